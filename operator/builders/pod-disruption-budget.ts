/** PodDisruptionBudget `<name>`, or none when disabled. */
import type { V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import { childMeta, childNames, selectorLabels } from './names';
import type { Desired } from './desired';

export function buildPodDisruptionBudget(cluster: PikoCluster): Desired<V1PodDisruptionBudget> | undefined {
  const pdb = cluster.spec.podDisruptionBudget;
  if (!pdb.enabled) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMeta(cluster, childNames(cluster).podDisruptionBudget),
    spec: {
      maxUnavailable: pdb.maxUnavailable,
      selector: { matchLabels: selectorLabels(cluster) },
      // A pod that is not ready serves nothing: evicting it costs no
      // availability, and refusing would let one crash-looping pod block
      // every node drain.
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}
