/**
 * Secret `<name>-cluster`: the secret every pod signs forwarded requests
 * with. Created once and never replaced (create-only): changing it while pods
 * run would make them refuse each other's forwards until all restarted.
 */
import { randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import { childMeta, childNames } from './names';
import { CLUSTER_SECRET_KEY } from './pod-paths';
import type { Desired } from './desired';

const SECRET_BYTES = 32;

/** A fresh secret value: 64 hex characters, safe in YAML and environment variables. */
export function generateClusterSecret(random: (size: number) => Buffer = randomBytes): string {
  return random(SECRET_BYTES).toString('hex');
}

export function buildClusterSecret(cluster: PikoCluster, value: string): Desired<V1Secret> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(cluster, childNames(cluster).clusterSecret),
    type: 'Opaque',
    stringData: { [CLUSTER_SECRET_KEY]: value },
  };
}
