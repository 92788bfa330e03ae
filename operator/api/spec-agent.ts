/** `spec.agent`: the agent the sidecar injector adds to opted-in pods (operator/webhook/). */
import type { V1SecurityContext } from '@kubernetes/client-node';
import { LOG_LEVELS } from '../../dataplane/log/logger';
import { IMAGE_DIGEST, IMAGE_REPOSITORY, IMAGE_TAG } from './k8s-patterns';
import { int, map, obj, preserveUnknown, quantity, str, type Infer } from './schema-builder';

export const agentSchema = obj(
  {
    image: obj(
      {
        repository: str({ description: "Image repository; the data plane's when unset.", pattern: IMAGE_REPOSITORY, maxLength: 255 }),
        tag: str({ description: "Image tag; the data plane's when unset.", pattern: IMAGE_TAG }),
        digest: str({ description: 'Image digest (sha256:...), overriding the tag.', pattern: IMAGE_DIGEST }),
      },
      { description: "Image of the injected agent; the data plane's image (which runs the agent too) when unset." },
    ),
    resources: obj(
      {
        requests: map(quantity({ description: 'Quantity.' }), { description: 'Minimum resources.' }),
        limits: map(quantity({ description: 'Quantity.' }), { description: 'Maximum resources.' }),
      },
      {
        description: 'Compute resources of the injected agent container.',
        default: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '128Mi' } },
      },
    ),
    securityContext: preserveUnknown<V1SecurityContext>({
      description:
        'Security context of the injected agent container (a Kubernetes SecurityContext); non-root (65532) on a read-only root with no capabilities when unset.',
    }),
    logLevel: str({
      description: "The injected agent's log level; the annotation piko.dev/agent-log-level overrides it.",
      enum: LOG_LEVELS,
      default: 'info',
    }),
    tokenExpirationSeconds: int({
      description:
        "Lifetime of the agent's projected ServiceAccount token; the kubelet renews it at 80% and the agent reconnects with the new one.",
      minimum: 600,
      maximum: 86400,
      default: 3600,
    }),
  },
  { description: 'The agent injected as a native sidecar into pods annotated piko.dev/cluster and piko.dev/listeners.', default: {} },
);

export type AgentSpec = Infer<typeof agentSchema>;
