/**
 * NetworkPolicy `<name>`: the data-plane pods' traffic, allowed by port and peer, everything else
 * denied where the CNI enforces NetworkPolicy.
 */
import type { V1NetworkPolicyPeer, V1NetworkPolicyPort } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import type { Desired } from './desired';
import { childMeta, childNames, LABEL_COMPONENT, LABEL_NAME, selectorLabels } from './names';

/** Where the apiserver answers (the `kubernetes` Service's endpoints); undefined when unknown. */
export type ApiServerEndpoints = readonly { ip: string; port: number }[] | undefined;

export interface NetworkPolicyInputs {
  /** The operator's namespace: its pods may reach the admin port (from any namespace when unset). */
  operatorNamespace?: string;
  apiServer: ApiServerEndpoints;
}

// The objects as the apiserver spells them: @kubernetes/client-node's model renames `from` to
// `_from`, and objects travel here as plain JSON.
interface IngressRule {
  from?: V1NetworkPolicyPeer[];
  ports: V1NetworkPolicyPort[];
}
interface EgressRule {
  to?: V1NetworkPolicyPeer[];
  ports: V1NetworkPolicyPort[];
}
export interface NetworkPolicyObject {
  spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: IngressRule[]; egress: EgressRule[] };
}

/** The name the chart gives the operator's pods (helm/piko/templates/_helpers.tpl piko.selectorLabels, without the release). */
const OPERATOR_POD_LABELS = { [LABEL_NAME]: 'piko', [LABEL_COMPONENT]: 'operator' };
// Ports the apiserver listens on in the common distributions, when its endpoints cannot be read.
const APISERVER_PORTS = [443, 6443];

const tcp = (port: number) => ({ protocol: 'TCP', port });

export function buildNetworkPolicy(cluster: PikoCluster, inputs: NetworkPolicyInputs): Desired<NetworkPolicyObject> | undefined {
  const spec = cluster.spec;
  const np = spec.networkPolicy;
  if (!np.enabled) return undefined;
  const ports = spec.ports;
  const ownPods: V1NetworkPolicyPeer = { podSelector: { matchLabels: selectorLabels(cluster) } };
  const operator: V1NetworkPolicyPeer = {
    namespaceSelector:
      inputs.operatorNamespace === undefined ? {} : { matchLabels: { 'kubernetes.io/metadata.name': inputs.operatorNamespace } },
    podSelector: { matchLabels: OPERATOR_POD_LABELS },
  };
  const from = (port: number, peers: readonly V1NetworkPolicyPeer[] | undefined): IngressRule =>
    // No `from`: every source, as a Service of type LoadBalancer needs.
    peers === undefined ? { ports: [tcp(port)] } : { ports: [tcp(port)], from: [...peers] };

  const ingress: IngressRule[] = [
    // Forwarding to the pod that holds a tunnel, and status across pods.
    { from: [ownPods], ports: [tcp(ports.proxy), tcp(ports.upstream), tcp(ports.admin)] },
    from(ports.proxy, np.proxyFrom),
    from(ports.upstream, np.upstreamFrom),
    from(ports.admin, [operator, ...(np.adminFrom ?? [])]),
  ];

  const egress: EgressRule[] = [
    { to: [ownPods], ports: [tcp(ports.proxy), tcp(ports.upstream), tcp(ports.admin)] },
    // The cluster DNS, wherever it runs.
    { ports: [{ protocol: 'UDP', port: 53 }, tcp(53)] },
    apiServerRule(inputs.apiServer),
  ];
  const usesJwks = [spec.auth?.proxy, spec.auth?.upstream, spec.auth?.admin].some((a) => a?.jwks !== undefined);
  // A JWKS URL may name any host; its port is what we can narrow to.
  if (usesJwks) egress.push({ ports: [tcp(443), tcp(80)] });

  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(cluster, childNames(cluster).networkPolicy),
    spec: { podSelector: { matchLabels: selectorLabels(cluster) }, policyTypes: ['Ingress', 'Egress'], ingress, egress },
  };
}

/** The registry's Leases and ConfigMaps, and TokenReview: the apiserver's own addresses when known. */
function apiServerRule(endpoints: ApiServerEndpoints): EgressRule {
  if (endpoints === undefined || endpoints.length === 0) return { ports: APISERVER_PORTS.map(tcp) };
  const ports = [...new Set(endpoints.map((e) => e.port))].sort((a, b) => a - b);
  const ips = [...new Set(endpoints.map((e) => e.ip))].sort();
  return { to: ips.map((ip) => ({ ipBlock: { cidr: ip.includes(':') ? `${ip}/128` : `${ip}/32` } })), ports: ports.map(tcp) };
}
