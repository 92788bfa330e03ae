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
        "Name to verify in other pods' proxy certificates. Pods dial each other by IP address, so set this unless the certificate names the pod IPs.",
      maxLength: 253,
      pattern: '^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$',
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

export const tlsSchema = obj(
  {
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
