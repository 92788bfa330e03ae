/** `spec.tls`: TLS on each port and between pods. */
import { DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX } from './k8s-patterns';
import { bool, obj, str, type Infer } from './schema-builder';
import { secretKeyRef, secretName } from './spec-refs';

const portTls = (port: string) =>
  obj(
    {
      secretName: secretName(`Secret of type kubernetes.io/tls (tls.crt and tls.key) the ${port} port serves.`),
      clientCASecretRef: secretKeyRef(
        `Secret key holding PEM certificate authorities; when set, ${port} clients must present a certificate one of them signed (mTLS).`,
      ),
    },
    { description: `Serve TLS on the ${port} port.` },
  );

const forwardingTls = obj(
  {
    rootCASecretRef: secretKeyRef(
      "Secret key holding PEM certificate authorities that verify other pods' proxy certificates; the system roots when unset.",
    ),
    serverName: str({
      description:
        "Name to verify in other pods' proxy certificates; {node} stands for the pod's name ({node}.<name>-nodes.<namespace>.svc names each pod, as certificates from tls.issuerRef do, and is the default with it). Pods dial each other by IP address, so set this unless the certificate names the pod IPs.",
      maxLength: 253,
      pattern: '^(\\{node\\}|[A-Za-z0-9])([-A-Za-z0-9.]*[A-Za-z0-9])?$',
    }),
    clientCertSecretName: str({
      description:
        'Secret of type kubernetes.io/tls a pod presents to other pods (mTLS); required when tls.proxy.clientCASecretRef is set.',
      maxLength: DNS_SUBDOMAIN_MAX,
      pattern: DNS_SUBDOMAIN,
    }),
    insecureSkipVerify: bool({ description: "Accept any certificate from other pods' proxy ports (testing only)." }),
  },
  {
    description:
      "How a pod connects to another pod's proxy port when it forwards a request for an endpoint whose upstream is connected there. Required with tls.proxy.",
  },
);

const issuerRef = obj(
  {
    name: str({
      description: 'Name of the Issuer or ClusterIssuer.',
      required: true,
      pattern: DNS_SUBDOMAIN,
      maxLength: DNS_SUBDOMAIN_MAX,
    }),
    kind: str({ description: 'Issuer (in this namespace) or ClusterIssuer.', enum: ['Issuer', 'ClusterIssuer'], default: 'Issuer' }),
    group: str({ description: "The issuer's API group; another for an external issuer.", default: 'cert-manager.io', maxLength: 253 }),
  },
  {
    description:
      "A cert-manager issuer of the pods' certificates: the operator creates a Certificate `<name>-<port>` for each port block, writing the block's secretName (the pods' DNS names and Service names, and the exposure host of a TLSRoute or TCPRoute), and `<name>-forwarding` for tls.forwarding.clientCertSecretName. Renewed certificates are reloaded in place, without a restart. Needs cert-manager: Ready is False with reason CertManagerNotInstalled until its CRDs are served.",
  },
);

export const tlsSchema = obj(
  {
    issuerRef,
    proxy: portTls('proxy'),
    upstream: portTls('upstream'),
    admin: portTls('admin'),
    forwarding: forwardingTls,
  },
  {
    description: 'TLS per port; a port without a block speaks plain HTTP.',
    validations: [
      {
        rule: '!has(self.forwarding) || has(self.proxy)',
        message: 'tls.forwarding needs tls.proxy: pods forward over TLS only when the proxy port serves it',
      },
      {
        rule: '!has(self.proxy) || has(self.forwarding)',
        message: "tls.forwarding is required with tls.proxy: pods dial each other's proxy port by IP and must know how to verify it",
      },
      {
        rule: '!has(self.proxy) || !has(self.proxy.clientCASecretRef) || (has(self.forwarding) && has(self.forwarding.clientCertSecretName))',
        message:
          'tls.forwarding.clientCertSecretName is required with tls.proxy.clientCASecretRef: pods must present a certificate to each other',
      },
    ],
  },
);

export type TlsSpec = Infer<typeof tlsSchema>;
export type PortTlsSpec = NonNullable<TlsSpec['proxy']>;
export type ForwardingTlsSpec = NonNullable<TlsSpec['forwarding']>;
