/**
 * The Gateway API routes of spec.exposure.gateway: `<name>-proxy` for clients and
 * `<name>-upstream` for agents outside the cluster, each an HTTPRoute, a TLSRoute (passthrough
 * by SNI to pods serving TLS themselves) or a TCPRoute, attached to the Gateway the spec names.
 */
import { parseDuration } from '../../dataplane/config/duration';
import type { PikoCluster } from '../api/pikocluster';
import type { Desired } from './desired';
import { childMeta, childNames } from './names';

export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';
export type RouteKind = 'HTTPRoute' | 'TLSRoute' | 'TCPRoute';

interface ParentRef {
  group: 'gateway.networking.k8s.io';
  kind: 'Gateway';
  name: string;
  namespace?: string;
  sectionName?: string;
}
interface BackendRef {
  name: string;
  port: number;
}
export interface RouteObject {
  spec: {
    parentRefs: ParentRef[];
    hostnames?: string[];
    rules: {
      matches?: { path: { type: 'PathPrefix'; value: string } }[];
      backendRefs: BackendRef[];
      timeouts?: { request: string };
    }[];
  };
}

/** Slack over proxyTimeout, so the proxy's own 504 reaches the client before the Gateway gives up. */
const TIMEOUT_SLACK_S = 5;
/** Gateway API durations have at most five digits per unit. */
const MAX_TIMEOUT_S = 99_999;

export function buildGatewayRoutes(cluster: PikoCluster): Desired<RouteObject>[] {
  const gateway = cluster.spec.exposure?.gateway;
  if (gateway === undefined) return [];
  const names = childNames(cluster);
  const out: Desired<RouteObject>[] = [];
  const ports = [
    { port: 'proxy', routeName: names.proxyRoute, service: names.proxyService },
    { port: 'upstream', routeName: names.upstreamRoute, service: names.upstreamService },
  ] as const;
  for (const { port, routeName, service } of ports) {
    const route = gateway[port];
    if (route === undefined) continue;
    const parentRef: ParentRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: gateway.gatewayRef.name };
    if (gateway.gatewayRef.namespace !== undefined) parentRef.namespace = gateway.gatewayRef.namespace;
    if (route.sectionName !== undefined) parentRef.sectionName = route.sectionName;
    const backendRefs = [{ name: service, port: cluster.spec.services[port].port ?? cluster.spec.ports[port] }];
    const hosts = [route.host, ...('extraHosts' in route ? (route.extraHosts ?? []) : [])];
    const spec: RouteObject['spec'] = { parentRefs: [parentRef], rules: [] };
    switch (route.route) {
      case 'HTTPRoute':
        spec.hostnames = hosts;
        spec.rules.push({
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs,
          timeouts: { request: port === 'upstream' ? '0s' : proxyRequestTimeout(cluster) },
        });
        break;
      case 'TLSRoute':
        spec.hostnames = hosts;
        spec.rules.push({ backendRefs });
        break;
      case 'TCPRoute':
        spec.rules.push({ backendRefs });
        break;
    }
    out.push({ apiVersion: GATEWAY_API_VERSION, kind: route.route, metadata: childMeta(cluster, routeName), spec });
  }
  return out;
}

/**
 * An agent's WebSocket lives for hours, so the upstream route has no request timeout ("0s"
 * disables it); the proxy route allows proxyTimeout and a little more, where an
 * implementation's default (Envoy's is 15 s) would cut requests the proxy still allows.
 */
function proxyRequestTimeout(cluster: PikoCluster): string {
  // validateSpec has parsed the spec's durations already.
  const ms = parseDuration(cluster.spec.proxyTimeout);
  if (ms === 0) return '0s';
  return `${Math.min(MAX_TIMEOUT_S, Math.ceil(ms / 1000) + TIMEOUT_SLACK_S)}s`;
}
