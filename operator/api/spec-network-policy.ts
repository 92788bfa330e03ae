/** `spec.networkPolicy`: who may reach the data plane's ports, and what it may reach. */
import type { V1NetworkPolicyPeer } from '@kubernetes/client-node';
import { arr, bool, obj, preserveUnknown, type Infer } from './schema-builder';

const peers = (who: string) =>
  arr(preserveUnknown<V1NetworkPolicyPeer>({ description: 'A Kubernetes NetworkPolicyPeer (podSelector, namespaceSelector, ipBlock).' }), {
    description: who,
    maxItems: 64,
  });

export const networkPolicySchema = obj(
  {
    enabled: bool({ description: 'Create the NetworkPolicy `<name>` for the data-plane pods.', default: true }),
    proxyFrom: peers('Who may reach the proxy port (client traffic); everyone when unset.'),
    upstreamFrom: peers('Who may reach the upstream port (agents); everyone when unset.'),
    adminFrom: peers(
      'Who besides the operator may reach the admin port (metrics, status), such as the monitoring namespace; the operator only when unset.',
    ),
  },
  {
    description:
      "A NetworkPolicy admitting the proxy and upstream ports from whom you allow, the admin port from the operator (and adminFrom), forwarding between this cluster's pods only; egress to the apiserver, DNS, this cluster's pods, and (with a JWKS) HTTP(S) anywhere. Enforced only where the CNI enforces NetworkPolicy.",
    default: {},
  },
);

export type NetworkPolicySpec = Infer<typeof networkPolicySchema>;
