/** status.urls: where clients and agents outside the cluster reach it, from spec.exposure. */
import { ENDPOINT_PLACEHOLDER } from '../../dataplane/config/server-config';
import type { PikoCluster } from '../api/pikocluster';

export interface ExposureUrls {
  proxy?: string;
  upstream?: string;
}

/**
 * The Gateway's routes win over the Ingresses when both are set (a move from Ingress to
 * Gateway API ends with the Gateway). Ports are the scheme's defaults: the listener's own port
 * is the Gateway's, which the operator does not read.
 */
export function exposureUrls(cluster: PikoCluster): ExposureUrls | undefined {
  const { ingress, gateway } = cluster.spec.exposure ?? {};
  if (ingress === undefined && gateway === undefined) return undefined;
  const url = (host: string, https: boolean) => `${https ? 'https' : 'http'}://${host.replace(/^\*\./, `${ENDPOINT_PLACEHOLDER}.`)}`;
  const urls: ExposureUrls = {};
  for (const port of ['proxy', 'upstream'] as const) {
    const route = gateway?.[port];
    if (route !== undefined) {
      // Past an HTTPRoute the Gateway speaks its listener's scheme; past a TLSRoute or TCPRoute, the pods' own.
      const https = route.route === 'HTTPRoute' ? route.scheme === 'https' : cluster.spec.tls?.[port] !== undefined;
      urls[port] = url(route.host, https);
      continue;
    }
    const rule = ingress?.[port];
    if (rule !== undefined) urls[port] = url(rule.host, rule.tlsSecretName !== undefined);
  }
  return urls;
}
