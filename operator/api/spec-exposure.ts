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

/** A Gateway listener by name (Gateway API sectionName). */
const sectionName = str({
  description: 'Listener of the Gateway to attach to (its sectionName); every listener whose hostname and protocol match when unset.',
  maxLength: 253,
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
});

const ROUTE_KINDS = ['HTTPRoute', 'TLSRoute', 'TCPRoute'] as const;
const routeKind = (port: string) =>
  str({
    description: `Route kind for the ${port} port: HTTPRoute (the Gateway terminates TLS), TLSRoute (passthrough by SNI to pods that serve tls.${port}) or TCPRoute (the listener's bytes as they are).`,
    enum: ROUTE_KINDS,
    default: 'HTTPRoute',
  });
const scheme = str({
  description: "What the Gateway listener serves, for status.urls of an HTTPRoute; a TLSRoute or TCPRoute URL follows the pods' own TLS.",
  enum: ['https', 'http'],
  default: 'https',
});

const gatewaySchema = obj(
  {
    gatewayRef: obj(
      {
        name: str({ description: 'Name of the Gateway.', required: true, pattern: DNS_SUBDOMAIN, maxLength: DNS_SUBDOMAIN_MAX }),
        namespace: str({
          description: "Namespace of the Gateway; this PikoCluster's when unset. Its listeners' allowedRoutes must admit this namespace.",
          pattern: DNS_SUBDOMAIN,
          maxLength: 63,
        }),
      },
      { description: 'The Gateway the routes attach to (their parentRef).', required: true },
    ),
    proxy: obj(
      {
        host: host('Host clients use; a wildcard (*.tunnel.example.com) routes <endpoint>.tunnel.example.com to endpoint.'),
        // An HTTPRoute takes at most 16 hostnames.
        extraHosts: arr(host('Another host.'), {
          description: 'More hosts for the proxy port (not for a TCPRoute, which has none).',
          maxItems: 15,
        }),
        route: routeKind('proxy'),
        sectionName,
        scheme,
      },
      {
        description: 'The route `<name>-proxy` to the proxy Service.',
        validations: [
          {
            rule: "self.route != 'TCPRoute' || !has(self.extraHosts)",
            message: 'a TCPRoute matches no hostnames: extraHosts need an HTTPRoute or a TLSRoute',
            fieldPath: '.extraHosts',
          },
        ],
      },
    ),
    upstream: obj(
      { host: host('Host agents connect to (their --connect.url).'), route: routeKind('upstream'), sectionName, scheme },
      {
        description:
          'The route `<name>-upstream` to the upstream Service, for agents outside the cluster; an HTTPRoute disables the request timeout, as agent connections live for hours.',
      },
    ),
  },
  {
    description:
      'Expose the ports through Gateway API routes (gateway.networking.k8s.io/v1) attached to a Gateway you run; Ready is False with reason GatewayAPINotInstalled while the route kind is not served.',
  },
);

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
    gateway: gatewaySchema,
  },
  {
    description:
      'How the proxy and upstream ports are reached from outside the cluster; status.urls shows the result. Ingress and gateway may both be set, as while moving from one to the other.',
  },
);

export type ExposureSpec = Infer<typeof exposureSchema>;
