/**
 * The PodMonitor of spec.monitoring.podMonitor: the Prometheus Operator scrapes every pod's
 * admin port, with the scheme, CA and token the admin port asks for.
 */
import { parseDuration } from '../../dataplane/config/duration';
import type { PikoCluster } from '../api/pikocluster';
import type { Desired } from './desired';
import { childMeta, childNames, selectorLabels } from './names';

export const PROMETHEUS_OPERATOR_API_VERSION = 'monitoring.coreos.com/v1';

interface SecretKeySelector {
  name: string;
  key: string;
}
export interface PodMonitorObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    podMetricsEndpoints: {
      port: 'admin';
      path: '/metrics';
      interval: string;
      scheme: 'http' | 'https';
      authorization?: { type: 'Bearer'; credentials: SecretKeySelector };
      tlsConfig?: { ca?: { secret: SecretKeySelector }; serverName?: string };
    }[];
  };
}

export function buildPodMonitor(cluster: PikoCluster): Desired<PodMonitorObject> | undefined {
  const monitor = cluster.spec.monitoring.podMonitor;
  if (!monitor.enabled) return undefined;
  const endpoint: PodMonitorObject['spec']['podMetricsEndpoints'][number] = {
    port: 'admin',
    path: '/metrics',
    interval: prometheusDuration(parseDuration(monitor.interval)),
    scheme: cluster.spec.tls?.admin === undefined ? 'http' : 'https',
  };
  if (monitor.bearerTokenSecretRef !== undefined)
    endpoint.authorization = { type: 'Bearer', credentials: { ...monitor.bearerTokenSecretRef } };
  if (endpoint.scheme === 'https' && (monitor.caSecretRef !== undefined || monitor.serverName !== undefined)) {
    endpoint.tlsConfig = {
      ...(monitor.caSecretRef === undefined ? {} : { ca: { secret: { ...monitor.caSecretRef } } }),
      ...(monitor.serverName === undefined ? {} : { serverName: monitor.serverName }),
    };
  }
  return {
    apiVersion: PROMETHEUS_OPERATOR_API_VERSION,
    kind: 'PodMonitor',
    metadata: childMeta(cluster, childNames(cluster).podMonitor, { labels: monitor.labels ?? {} }),
    spec: { selector: { matchLabels: selectorLabels(cluster) }, podMetricsEndpoints: [endpoint] },
  };
}

/** Prometheus durations have whole units down to milliseconds (`1m30s`, `500ms`); ours may have fractions. */
function prometheusDuration(ms: number): string {
  const whole = Math.max(1, Math.round(ms));
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`;
}
