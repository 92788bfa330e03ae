import { API_VERSION, KIND, pikoClusterSpecSchema, type PikoCluster, type PikoClusterMeta } from '../../../operator/api/pikocluster';
import type { PikoClusterSpec, PikoClusterSpecInput } from '../../../operator/api/pikocluster-spec';
import { applyDefaults } from '../../../operator/api/schema-defaults';

export const UID = '6f1c1a8e-3c1b-4d2e-9a57-0d3c5b7e2f10';
export const DEFAULT_IMAGE = 'ghcr.io/piko-k8s/piko:0.1.0';

/** A PikoCluster as the API server returns it: the spec defaulted, metadata filled in. */
export function makeCluster(spec: PikoClusterSpecInput = {}, meta: Partial<PikoClusterMeta> = {}): PikoCluster {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: 'piko', namespace: 'edge', uid: UID, generation: 1, ...meta },
    spec: applyDefaults(pikoClusterSpecSchema(), spec) as PikoClusterSpec,
  };
}
