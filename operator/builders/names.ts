/** Names, labels and the owner reference every child of a PikoCluster shares. */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, KIND, type PikoCluster } from '../api/pikocluster';

export const MANAGED_BY = 'piko-operator';
export const COMPONENT = 'dataplane';
/** Pod-template annotation holding the hash of server.yaml, so a config change rolls the pods. */
export const CONFIG_HASH_ANNOTATION = 'piko.dev/config-hash';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';

/** Labels the operator owns on pods; podLabels may not set them. */
export const RESERVED_LABELS: readonly string[] = [LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT, LABEL_MANAGED_BY];

/** Names of a cluster's children, all derived from the PikoCluster's name. */
export interface ChildNames {
  statefulSet: string;
  headlessService: string;
  proxyService: string;
  upstreamService: string;
  configMap: string;
  serviceAccount: string;
  role: string;
  roleBinding: string;
  podDisruptionBudget: string;
  networkPolicy: string;
  proxyIngress: string;
  upstreamIngress: string;
  /** The Gateway API routes (HTTPRoute, TLSRoute or TCPRoute) of spec.exposure.gateway. */
  proxyRoute: string;
  upstreamRoute: string;
  podMonitor: string;
  clusterSecret: string;
}

export function childNames(cluster: PikoCluster): ChildNames {
  const name = cluster.metadata.name;
  return {
    statefulSet: name,
    headlessService: `${name}-nodes`,
    proxyService: `${name}-proxy`,
    upstreamService: `${name}-upstream`,
    configMap: `${name}-config`,
    serviceAccount: name,
    role: `${name}-registry`,
    roleBinding: `${name}-registry`,
    podDisruptionBudget: name,
    networkPolicy: name,
    proxyIngress: `${name}-proxy`,
    upstreamIngress: `${name}-upstream`,
    proxyRoute: `${name}-proxy`,
    upstreamRoute: `${name}-upstream`,
    podMonitor: name,
    clusterSecret: `${name}-cluster`,
  };
}

/** The pods' selector: never changes for a given cluster (a StatefulSet's selector is immutable). */
export function selectorLabels(cluster: PikoCluster): Record<string, string> {
  return {
    [LABEL_NAME]: 'piko',
    [LABEL_INSTANCE]: cluster.metadata.name,
    [LABEL_COMPONENT]: COMPONENT,
  };
}

/** `status.selector`: the selector as a string, for the scale subresource. */
export function selectorString(cluster: PikoCluster): string {
  return Object.entries(selectorLabels(cluster))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function commonLabels(cluster: PikoCluster): Record<string, string> {
  return { ...selectorLabels(cluster), [LABEL_MANAGED_BY]: MANAGED_BY };
}

/** Makes the PikoCluster the controller of a child, so deleting it deletes the child. */
export function ownerReference(cluster: PikoCluster): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cluster.metadata.name,
    uid: cluster.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** A child's metadata: namespace, common labels and the owner reference. */
export function childMeta(
  cluster: PikoCluster,
  name: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1ObjectMeta & { name: string; namespace: string } {
  const meta: V1ObjectMeta & { name: string; namespace: string } = {
    name,
    namespace: cluster.metadata.namespace,
    labels: { ...(extra.labels ?? {}), ...commonLabels(cluster) },
    ownerReferences: [ownerReference(cluster)],
  };
  if (extra.annotations !== undefined && Object.keys(extra.annotations).length > 0) {
    meta.annotations = { ...extra.annotations };
  }
  return meta;
}
