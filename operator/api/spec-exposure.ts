/** `spec.exposure`: how clients and agents outside the cluster reach the proxy and upstream ports. */
import { arr, map, obj, str, type Infer } from './schema-builder';
import { DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX } from './k8s-patterns';

/** A host name, or for the proxy a wildcard (`*.tunnel.example.com`): the endpoint is the first label. */
const HOST = '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$';

const host = (description: string) => str({ description, required: true, pattern: HOST, maxLength: 253 });

const tlsSecretName = str({
  description: 'A kubernetes.io/tls Secret in this namespace with the certificate for the host(s); plain HTTP when unset.',
  pattern: DNS_SUBDOMAIN,
  maxLength: DNS_SUBDOMAIN_MAX,
});

export const exposureSchema = obj(
  {
    ingress: obj(
      {
        className: str({ description: 'IngressClass of the Ingresses (such as nginx); the cluster default when unset.', maxLength: 253 }),
        annotations: map(str({ description: 'Annotation value.' }), {
          description:
            'Annotations of both Ingresses, over the defaults the operator sets for ingress-nginx (hour-long reads and sends on the upstream Ingress, the proxy timeout on the proxy one).',
        }),
        proxy: obj(
          {
            host: host('Host clients use; a wildcard (*.tunnel.example.com) routes <endpoint>.tunnel.example.com to endpoint.'),
            extraHosts: arr(host('Another host.'), { description: 'More hosts for the proxy port.', maxItems: 32 }),
            tlsSecretName,
          },
          { description: 'The Ingress `<name>-proxy` in front of the proxy Service.' },
        ),
        upstream: obj(
          { host: host('Host agents connect to (their --connect.url).'), tlsSecretName },
          { description: 'The Ingress `<name>-upstream` in front of the upstream Service, for agents outside the cluster.' },
        ),
      },
      { description: 'Expose the ports through Ingress objects (networking.k8s.io/v1).' },
    ),
  },
  { description: 'How the proxy and upstream ports are reached from outside the cluster; status.urls shows the result.' },
);

export type ExposureSpec = Infer<typeof exposureSchema>;
