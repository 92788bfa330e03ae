/** `spec` of a PikoCluster: the single source of its CRD schema and its TypeScript type. */
import type { V1Affinity, V1EnvVarSource, V1Toleration, V1TopologySpreadConstraint } from '@kubernetes/client-node';
import { LOG_LEVELS } from '../../dataplane/log/logger';
import { DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX, IMAGE_DIGEST, IMAGE_REPOSITORY, IMAGE_TAG } from './k8s-patterns';
import {
  arr,
  bool,
  duration,
  int,
  intOrString,
  map,
  obj,
  preserveUnknown,
  quantity,
  str,
  type Infer,
  type InferInput,
  type ValidationRule,
} from './schema-builder';
import { agentSchema } from './spec-agent';
import { authSchema } from './spec-auth';
import { exposureSchema } from './spec-exposure';
import { networkPolicySchema } from './spec-network-policy';
import { servicesSchema } from './spec-services';
import { tlsSchema } from './spec-tls';
import { monitoringSchema } from './spec-monitoring';

export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

const positive = (field: string): ValidationRule => ({
  rule: "duration(self) > duration('0s')",
  message: `${field} must be longer than 0s`,
});

// Ports below 1024 need privileges the non-root pod does not have; the
// Services can still expose any port.
const containerPort = (port: string, def: number) =>
  int({ description: `Container port of the ${port} listener.`, minimum: 1024, maximum: 65535, default: def });

const imageSchema = obj(
  {
    repository: str({
      description: "Image repository; the operator's own data-plane image when unset.",
      pattern: IMAGE_REPOSITORY,
      maxLength: 255,
    }),
    tag: str({ description: "Image tag; the operator's own version when unset.", pattern: IMAGE_TAG }),
    digest: str({ description: 'Image digest (sha256:...); pins the image, overriding the tag.', pattern: IMAGE_DIGEST }),
    pullPolicy: str({ description: 'Image pull policy.', enum: PULL_POLICIES, default: 'IfNotPresent' }),
    pullSecrets: arr(
      obj({
        name: str({
          description: 'Name of a docker-registry Secret.',
          required: true,
          pattern: DNS_SUBDOMAIN,
          maxLength: DNS_SUBDOMAIN_MAX,
        }),
      }),
      { description: 'Secrets used to pull the image.', listType: 'map', listMapKeys: ['name'] },
    ),
  },
  { description: 'Container image of the data plane (the same image runs server, agent and operator).', default: {} },
);

const resourcesSchema = obj(
  {
    requests: map(quantity({ description: 'Quantity.' }), { description: 'Minimum resources, such as cpu: 100m, memory: 128Mi.' }),
    limits: map(quantity({ description: 'Quantity.' }), { description: 'Maximum resources.' }),
  },
  { description: 'Compute resources of the data-plane container.' },
);

/**
 * Variables the operator sets on the data-plane container, which the server's rendered YAML
 * refers to (`${POD_IP}`, `${PIKO_CLUSTER_SECRET}`): a user's would replace ours, so spec.env
 * may not name them.
 */
export const OPERATOR_ENV = ['POD_NAME', 'POD_NAMESPACE', 'POD_UID', 'POD_IP'] as const;
export const OPERATOR_ENV_PREFIX = 'PIKO_';
export const ENV_MAX = 64;

const envVarSchema = obj(
  {
    // Kubernetes' own rule for a variable name (C identifiers and more: dots and dashes).
    name: str({ description: 'Variable name.', required: true, pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$', maxLength: 256 }),
    value: str({ description: 'Value; $(NAME) refers to a variable defined before it, as Kubernetes expands it.', maxLength: 32_768 }),
    valueFrom: preserveUnknown<V1EnvVarSource>({
      description: 'Where the value comes from (a Kubernetes EnvVarSource: secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef).',
    }),
  },
  {
    description: 'A Kubernetes EnvVar.',
    validations: [{ rule: '!(has(self.value) && has(self.valueFrom))', message: 'value and valueFrom are exclusive' }],
  },
);

const envSchema = arr(envVarSchema, {
  description: `Extra environment of the data-plane container, such as NODE_OPTIONS=--max-old-space-size=400 or HTTPS_PROXY for a JWKS behind a proxy. At most ${ENV_MAX}; names the operator sets (${OPERATOR_ENV.join(', ')}, ${OPERATOR_ENV_PREFIX}*) are refused.`,
  maxItems: ENV_MAX,
  listType: 'map',
  listMapKeys: ['name'],
  validations: [
    {
      rule: `self.all(e, !(e.name in [${OPERATOR_ENV.map((n) => `'${n}'`).join(', ')}]) && !e.name.startsWith('${OPERATOR_ENV_PREFIX}'))`,
      message: `env may not set ${OPERATOR_ENV.join(', ')} or ${OPERATOR_ENV_PREFIX}* variables, which the operator sets`,
    },
  ],
});

const portsSchema = obj(
  {
    proxy: containerPort('proxy (client traffic)', 8000),
    upstream: containerPort('upstream (agent connections)', 8001),
    admin: containerPort('admin (health, readiness, metrics, status)', 8002),
  },
  {
    description: "Container ports of the data plane's three listeners.",
    default: {},
    validations: [
      {
        rule: 'self.proxy != self.upstream && self.proxy != self.admin && self.upstream != self.admin',
        message: 'ports.proxy, ports.upstream and ports.admin must be distinct',
      },
    ],
  },
);

const registrySchema = obj(
  {
    leaseDuration: duration({
      description: 'How long a pod counts as alive after its last lease renewal.',
      default: '15s',
      validations: [positive('leaseDuration')],
    }),
    renewInterval: duration({
      description: 'How often a pod renews its lease; shorter than leaseDuration.',
      default: '5s',
      validations: [positive('renewInterval')],
    }),
  },
  {
    description: 'Timing of the Kubernetes registry through which pods learn which pod holds which endpoint.',
    default: {},
    validations: [
      {
        rule: 'duration(self.renewInterval) < duration(self.leaseDuration)',
        message: 'renewInterval must be shorter than leaseDuration',
        fieldPath: '.renewInterval',
      },
    ],
  },
);

const schedulingSchema = obj(
  {
    nodeSelector: map(str({ description: 'Label value.' }), { description: 'Node labels the pods must run on.' }),
    tolerations: arr(preserveUnknown<V1Toleration>({ description: 'A Kubernetes Toleration.' }), {
      description: 'Tolerations of the pods (Kubernetes Toleration objects).',
    }),
    affinity: preserveUnknown<V1Affinity>({ description: 'Affinity of the pods (a Kubernetes Affinity object).' }),
    topologySpreadConstraints: arr(preserveUnknown<V1TopologySpreadConstraint>({ description: 'A Kubernetes TopologySpreadConstraint.' }), {
      description:
        "How the pods spread across zones or nodes (Kubernetes TopologySpreadConstraint objects); a constraint without labelSelector selects this cluster's pods.",
    }),
    priorityClassName: str({ description: 'PriorityClass of the pods.', pattern: DNS_SUBDOMAIN, maxLength: DNS_SUBDOMAIN_MAX }),
  },
  { description: 'Where the pods are scheduled.' },
);

const pdbSchema = obj(
  {
    enabled: bool({ description: 'Create a PodDisruptionBudget for the pods.', default: true }),
    maxUnavailable: intOrString({
      description: 'Pods that may be evicted at once: a number, or a percentage of replicas rounded up.',
      default: 1,
      minimum: 0,
      pattern: '^(100|[1-9]?[0-9])%$',
    }),
  },
  { description: 'PodDisruptionBudget `<name>`, which bounds voluntary evictions such as node drains.', default: {} },
);

export const specSchema = obj(
  {
    replicas: int({ description: 'Number of data-plane pods.', minimum: 0, format: 'int32', default: 3 }),
    image: imageSchema,
    resources: resourcesSchema,
    env: envSchema,
    ports: portsSchema,
    proxyTimeout: duration({
      description: 'Per-request limit forwarding to an upstream; 0s disables (WebSocket upgrades are exempt).',
      default: '30s',
    }),
    upstreamWait: duration({
      description:
        'How long the proxy holds a request for an endpoint no upstream serves yet, such as while an agent reconnects during a rolling restart; 0s answers 502 at once.',
      default: '5s',
    }),
    auth: authSchema,
    tls: tlsSchema,
    services: servicesSchema,
    registry: registrySchema,
    logLevel: str({ description: 'Minimum log level.', enum: LOG_LEVELS, default: 'info' }),
    gracePeriod: duration({
      description:
        'Time a pod has after SIGTERM to drain requests and close upstream connections; the pod termination grace period is set a little longer.',
      default: '60s',
      validations: [positive('gracePeriod')],
    }),
    scheduling: schedulingSchema,
    podDisruptionBudget: pdbSchema,
    podLabels: map(str({ description: 'Label value.' }), { description: 'Extra labels of the pods.' }),
    podAnnotations: map(str({ description: 'Annotation value.' }), { description: 'Extra annotations of the pods.' }),
    agent: agentSchema,
    networkPolicy: networkPolicySchema,
    exposure: exposureSchema,
    monitoring: monitoringSchema,
  },
  {
    description: 'Desired state of the Piko data plane.',
    default: {},
    validations: (['proxy', 'upstream'] as const).map((port) => ({
      rule: `!has(self.exposure) || !has(self.exposure.gateway) || !has(self.exposure.gateway.${port}) || self.exposure.gateway.${port}.route != 'TLSRoute' || (has(self.tls) && has(self.tls.${port}))`,
      message: `exposure.gateway.${port}.route TLSRoute passes TLS through to the pods, which then need tls.${port}`,
      fieldPath: `.exposure.gateway.${port}.route`,
    })),
  },
);

/** The spec as the operator reads it: defaults applied by the API server. */
export type PikoClusterSpec = Infer<typeof specSchema>;
/** The spec as a user writes it. */
export type PikoClusterSpecInput = InferInput<typeof specSchema>;
export type PodDisruptionBudgetSpec = PikoClusterSpec['podDisruptionBudget'];
export type SchedulingSpec = NonNullable<PikoClusterSpec['scheduling']>;
export type ImageSpec = PikoClusterSpec['image'];
export type PortsSpec = PikoClusterSpec['ports'];
