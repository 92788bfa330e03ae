/**
 * The Ingresses of spec.exposure.ingress: `<name>-proxy` for clients (a wildcard host routes by
 * the first label, as the proxy does) and `<name>-upstream` for agents outside the cluster, each
 * with what a tunnel needs of ingress-nginx (no body limit, long reads on agent connections).
 */
import { parseDuration } from '../../dataplane/config/duration';
import type { PikoCluster } from '../api/pikocluster';
import type { Desired } from './desired';
import { childMeta, childNames } from './names';

interface IngressRule {
  host: string;
  http: { paths: { path: string; pathType: string; backend: { service: { name: string; port: { name: string } } } }[] };
}
export interface IngressObject {
  spec: { ingressClassName?: string; tls?: { hosts: string[]; secretName: string }[]; rules: IngressRule[] };
}

const NGINX = 'nginx.ingress.kubernetes.io';
/** An agent's WebSocket lives for hours; ingress-nginx closes a connection idle for its read timeout. */
const HOUR_S = '3600';

export function buildIngresses(cluster: PikoCluster): Desired<IngressObject>[] {
  const ingress = cluster.spec.exposure?.ingress;
  if (ingress === undefined) return [];
  const names = childNames(cluster);
  const nginx = ingress.className === undefined || ingress.className.includes('nginx');
  const build = (
    name: string,
    service: string,
    port: 'proxy' | 'upstream',
    hosts: string[],
    tlsSecretName: string | undefined,
    defaults: Record<string, string>,
  ): Desired<IngressObject> => {
    const spec: IngressObject['spec'] = {
      rules: hosts.map((host) => ({
        host,
        http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service, port: { name: port } } } }] },
      })),
    };
    if (ingress.className !== undefined) spec.ingressClassName = ingress.className;
    if (tlsSecretName !== undefined) spec.tls = [{ hosts, secretName: tlsSecretName }];
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: childMeta(cluster, name, { annotations: { ...(nginx ? defaults : {}), ...(ingress.annotations ?? {}) } }),
      spec,
    };
  };
  const out: Desired<IngressObject>[] = [];
  if (ingress.proxy !== undefined) {
    // validateSpec has parsed the spec's durations already; ingress-nginx counts whole seconds.
    const timeout = String(Math.max(60, Math.ceil(parseDuration(cluster.spec.proxyTimeout) / 1000)));
    out.push(
      build(
        names.proxyIngress,
        names.proxyService,
        'proxy',
        [ingress.proxy.host, ...(ingress.proxy.extraHosts ?? [])],
        ingress.proxy.tlsSecretName,
        {
          [`${NGINX}/proxy-body-size`]: '0',
          [`${NGINX}/proxy-read-timeout`]: timeout,
          [`${NGINX}/proxy-send-timeout`]: timeout,
        },
      ),
    );
  }
  if (ingress.upstream !== undefined) {
    out.push(
      build(names.upstreamIngress, names.upstreamService, 'upstream', [ingress.upstream.host], ingress.upstream.tlsSecretName, {
        [`${NGINX}/proxy-read-timeout`]: HOUR_S,
        [`${NGINX}/proxy-send-timeout`]: HOUR_S,
        [`${NGINX}/proxy-body-size`]: '0',
      }),
    );
  }
  return out;
}
