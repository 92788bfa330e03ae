/** `status` of a PikoCluster, written by the operator. */
import { arr, bool, int, obj, str, type Infer } from './schema-builder';

export const CONDITION_TYPES = ['Ready', 'Progressing', 'Degraded'] as const;
export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;
/** metav1.Condition's reason syntax: CamelCase, no spaces or dots. */
export const CONDITION_REASON = '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$';
export const CONDITION_MESSAGE_MAX = 32768;
/** A bundle of a few dozen certificates; it travels in a pod annotation, where all of them share 256 KiB. */
export const UPSTREAM_CA_MAX = 65536;

// The shape of metav1.Condition, so `kubectl wait --for=condition=Ready` works.
const conditionSchema = obj({
  type: str({ description: 'Ready, Progressing or Degraded.', required: true, maxLength: 316 }),
  status: str({ description: 'True, False or Unknown.', required: true, enum: CONDITION_STATUSES }),
  observedGeneration: int({
    description: 'metadata.generation of the PikoCluster the condition was set from.',
    minimum: 0,
    format: 'int64',
  }),
  lastTransitionTime: str({ description: 'When status last changed.', required: true, format: 'date-time' }),
  reason: str({
    description: 'CamelCase reason for the status.',
    required: true,
    minLength: 1,
    maxLength: 1024,
    pattern: CONDITION_REASON,
  }),
  message: str({ description: 'Human-readable detail.', required: true, maxLength: CONDITION_MESSAGE_MAX }),
});

const nodeSchema = obj({
  name: str({ description: 'Pod name, which is also the node ID in the registry.', required: true }),
  ready: bool({ description: 'Whether the pod is Ready.', required: true }),
  endpoints: int({ description: 'Endpoints this pod has upstreams for.', required: true, minimum: 0 }),
  upstreams: int({ description: 'Upstream connections this pod holds.', required: true, minimum: 0 }),
});

export const statusSchema = obj(
  {
    observedGeneration: int({ description: 'metadata.generation the status was derived from.', minimum: 0, format: 'int64' }),
    conditions: arr(conditionSchema, {
      description:
        'Ready: every replica runs the current spec and is ready. Progressing: a rollout or scale is under way. Degraded: the spec is invalid or pods fail.',
      listType: 'map',
      listMapKeys: ['type'],
    }),
    replicas: int({ description: 'Pods the StatefulSet has.', minimum: 0, format: 'int32' }),
    readyReplicas: int({ description: 'Pods that are ready.', minimum: 0, format: 'int32' }),
    endpoints: int({ description: 'Distinct endpoints with at least one upstream, across the cluster.', minimum: 0 }),
    upstreams: int({ description: 'Upstream connections across the cluster.', minimum: 0 }),
    nodes: arr(nodeSchema, { description: 'One entry per pod.', listType: 'map', listMapKeys: ['name'] }),
    selector: str({ description: 'Label selector of the pods, for the scale subresource (HorizontalPodAutoscaler).' }),
    urls: obj(
      {
        proxy: str({ description: 'Where clients reach the proxy from outside (spec.exposure); <endpoint> replaces a wildcard.' }),
        upstream: str({ description: 'What agents outside the cluster pass as --connect.url.' }),
      },
      { description: 'The URLs of spec.exposure.' },
    ),
    upstreamCA: str({
      description:
        "PEM certificate authorities that verify the upstream port's certificate: ca.crt of spec.tls.upstream.secretName (cert-manager writes it), empty when the Secret has none (agents then trust the system's roots). The sidecar injector hands it to the agents it adds, which cannot read a Secret of another namespace, and refuses pods until it is known.",
      maxLength: UPSTREAM_CA_MAX,
    }),
  },
  { description: 'Observed state, written by the operator.' },
);

export type PikoClusterStatus = Infer<typeof statusSchema>;
export type Condition = NonNullable<PikoClusterStatus['conditions']>[number];
export type ConditionType = (typeof CONDITION_TYPES)[number];
export type ConditionStatus = (typeof CONDITION_STATUSES)[number];
export type NodeSummary = NonNullable<PikoClusterStatus['nodes']>[number];
