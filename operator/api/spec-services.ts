/** `spec.services`: the Services in front of the proxy and upstream ports. */
import { int, map, obj, str, type Infer } from './schema-builder';

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;

const service = (port: string, who: string) =>
  obj(
    {
      type: str({ description: 'Service type.', enum: SERVICE_TYPES, default: 'ClusterIP' }),
      port: int({
        description: `Port the Service exposes; spec.ports.${port} when unset.`,
        minimum: 1,
        maximum: 65535,
      }),
      nodePort: int({
        description: 'Node port to request with type NodePort or LoadBalancer; allocated by Kubernetes when unset.',
        minimum: 1,
        maximum: 65535,
      }),
      annotations: map(str({ description: 'Annotation value.' }), {
        description: 'Annotations of the Service, such as cloud load-balancer settings.',
      }),
      loadBalancerClass: str({
        description: 'Load balancer implementation to use with type LoadBalancer.',
        maxLength: 253,
      }),
    },
    {
      description: `The ${port} Service \`<name>-${port}\`, which ${who} connect to.`,
      default: {},
      validations: [
        { rule: "!has(self.loadBalancerClass) || self.type == 'LoadBalancer'", message: 'loadBalancerClass needs type LoadBalancer' },
        { rule: "!has(self.nodePort) || self.type != 'ClusterIP'", message: 'nodePort needs type NodePort or LoadBalancer' },
      ],
    },
  );

export const servicesSchema = obj(
  {
    proxy: service('proxy', 'clients'),
    upstream: service('upstream', 'agents'),
  },
  { description: 'Services for the proxy and upstream ports.', default: {} },
);

export type ServicesSpec = Infer<typeof servicesSchema>;
export type ServiceSpec = ServicesSpec['proxy'];
