/**
 * The cert-manager Certificates of spec.tls.issuerRef: one per TLS port block, writing the
 * Secret the block names, and one for the client certificate pods present to each other. The
 * pods' own names are in each (`<pod>.<name>-nodes.<ns>.svc`, by a wildcard, as a StatefulSet's
 * pods are named under its headless Service), so forwarding verifies the peer it means to
 * reach ({node} in server_name) rather than only the CA.
 */
import type { PikoCluster } from '../api/pikocluster';
import type { Desired } from './desired';
import { childMeta, childNames } from './names';
import { PORTS } from './pod-paths';

export const CERT_MANAGER_API_VERSION = 'cert-manager.io/v1';

export interface CertificateObject {
  spec: {
    secretName: string;
    issuerRef: { name: string; kind: string; group: string };
    dnsNames: string[];
    usages: string[];
    privateKey: { algorithm: 'ECDSA'; size: 256; rotationPolicy: 'Always' };
  };
}

/** The DNS names every pod of the cluster answers to, and the Services in front of them. */
function clusterDnsNames(cluster: PikoCluster, service: string | undefined): string[] {
  const { namespace } = cluster.metadata;
  const nodes = childNames(cluster).headlessService;
  const names = [`*.${nodes}.${namespace}.svc`, `*.${nodes}.${namespace}.svc.cluster.local`];
  if (service !== undefined)
    names.push(service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`);
  return names;
}

/** `{node}.<name>-nodes.<ns>.svc`: the name a pod proves when another forwards to it. */
export function podServerName(cluster: PikoCluster): string {
  return `{node}.${childNames(cluster).headlessService}.${cluster.metadata.namespace}.svc`;
}

export function buildCertificates(cluster: PikoCluster): Desired<CertificateObject>[] {
  const tls = cluster.spec.tls;
  const issuer = tls?.issuerRef;
  if (tls === undefined || issuer === undefined) return [];
  const names = childNames(cluster);
  const gateway = cluster.spec.exposure?.gateway;
  const services = { proxy: names.proxyService, upstream: names.upstreamService, admin: undefined } as const;
  const certificate = (name: string, secretName: string, dnsNames: string[], usages: string[]): Desired<CertificateObject> => ({
    apiVersion: CERT_MANAGER_API_VERSION,
    kind: 'Certificate',
    metadata: childMeta(cluster, name),
    spec: {
      secretName,
      issuerRef: { name: issuer.name, kind: issuer.kind, group: issuer.group },
      dnsNames: [...new Set(dnsNames)],
      usages,
      // A new key at each renewal; P-256 keeps handshakes cheap.
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
    },
  });
  const out: Desired<CertificateObject>[] = [];
  for (const port of PORTS) {
    const block = tls[port];
    if (block === undefined) continue;
    const dnsNames = clusterDnsNames(cluster, services[port]);
    // Past a TLSRoute or TCPRoute the pods themselves answer for the public host.
    const route = port === 'admin' ? undefined : gateway?.[port];
    if (route !== undefined && route.route !== 'HTTPRoute') {
      dnsNames.unshift(route.host, ...(port === 'proxy' ? (gateway?.proxy?.extraHosts ?? []) : []));
    }
    // The proxy port's certificate is also what pods prove to each other when forwarding.
    out.push(
      certificate(`${cluster.metadata.name}-${port}`, block.secretName, dnsNames, ['digital signature', 'key encipherment', 'server auth']),
    );
  }
  const client = tls.forwarding?.clientCertSecretName;
  if (client !== undefined) {
    out.push(
      certificate(`${cluster.metadata.name}-forwarding`, client, clusterDnsNames(cluster, undefined), [
        'digital signature',
        'key encipherment',
        'client auth',
      ]),
    );
  }
  return out;
}

/** Secrets the Certificates write: they exist only once cert-manager has issued them. */
export function issuedSecretNames(cluster: PikoCluster): Set<string> {
  return new Set(buildCertificates(cluster).map((c) => c.spec.secretName));
}
