/** `spec.auth`: JWT verification on each of the data plane's three ports. */
import { arr, bool, duration, obj, str, type AnySchema, type Infer } from './schema-builder';
import { secretKeyRef } from './spec-refs';

/** Endpoint IDs as the data plane accepts them (dataplane/protocol/endpoint-id.ts). */
const ENDPOINT_ID = '^[A-Za-z0-9._~-]{1,128}$';
const K8S_NAME = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';

/** `spec.auth.upstream.serviceAccounts[]`: which pods may serve which endpoints, by their ServiceAccount. */
export const serviceAccountRuleSchema = obj(
  {
    namespace: str({ description: 'Namespace of the ServiceAccount.', required: true, pattern: K8S_NAME, maxLength: 63 }),
    name: str({
      description: 'Name of the ServiceAccount; every ServiceAccount of the namespace when omitted.',
      pattern: K8S_NAME,
      maxLength: 253,
    }),
    endpoints: arr(str({ description: 'An endpoint ID.', pattern: ENDPOINT_ID }), {
      description: 'Endpoint IDs it may listen on.',
      maxItems: 256,
      listType: 'set',
    }),
    endpointPrefix: str({ description: 'Or any endpoint ID starting with this.', pattern: ENDPOINT_ID }),
  },
  {
    description: "A ServiceAccount (or every one of a namespace) and the endpoints its pods' agents may listen on.",
    validations: [{ rule: 'has(self.endpoints) || has(self.endpointPrefix)', message: 'set endpoints or endpointPrefix' }],
  },
);

const authBlock = <const E extends Readonly<Record<string, AnySchema>>>(
  port: string,
  extra: string,
  more: E,
  alone: readonly string[] = [],
) =>
  obj(
    {
      ...more,
      hmacSecretKeyRef: secretKeyRef(
        `Secret key holding the HMAC secret that verifies HS256/384/512 tokens on the ${port} port. ` +
          "It reaches the server through its YAML config, so it must not contain a single quote (') or a line break.",
      ),
      rsaPublicKeyRef: secretKeyRef(
        `Secret key holding a PEM RSA public key (2048 bits or more) that verifies RS256/384/512 tokens on the ${port} port.`,
      ),
      ecdsaPublicKeyRef: secretKeyRef(
        `Secret key holding a PEM ECDSA public key (P-256, P-384 or P-521) that verifies ES256/384/512 tokens on the ${port} port.`,
      ),
      jwks: obj(
        {
          url: str({
            description: 'http(s) URL of the JSON Web Key Set.',
            required: true,
            pattern: '^https?://[^\\s]+$',
            maxLength: 2048,
          }),
          cacheTTL: duration({ description: 'How long a fetched key set is used before it is fetched again (server default 1h).' }),
          timeout: duration({ description: 'Timeout of one fetch of the key set (server default 10s).' }),
        },
        { description: 'Verify tokens against a JSON Web Key Set fetched over HTTP; cannot be combined with the static keys.' },
      ),
      audience: str({ description: "Required 'aud' claim; not checked when empty.", maxLength: 1024 }),
      issuer: str({ description: "Required 'iss' claim; not checked when empty.", maxLength: 1024 }),
      disableDisconnectOnExpiry: bool({
        description: 'Keep connections open when their token expires (expiry is still checked when they connect).',
      }),
    },
    {
      description:
        `Require a JWT on the ${port} port. Set one or more static keys (a token is checked against the key ` +
        `matching its 'alg') or a JWKS. ${extra}`,
      validations: [
        {
          rule: ['hmacSecretKeyRef', 'rsaPublicKeyRef', 'ecdsaPublicKeyRef', 'jwks', ...alone].map((f) => `has(self.${f})`).join(' || '),
          message: `set at least one of ${['hmacSecretKeyRef', 'rsaPublicKeyRef', 'ecdsaPublicKeyRef', 'jwks', ...alone].join(', ')}`,
        },
        {
          rule: '!has(self.jwks) || !(has(self.hmacSecretKeyRef) || has(self.rsaPublicKeyRef) || has(self.ecdsaPublicKeyRef))',
          message: 'jwks cannot be combined with hmacSecretKeyRef, rsaPublicKeyRef or ecdsaPublicKeyRef',
        },
      ],
    },
  );

export const authSchema = obj(
  {
    proxy: authBlock('proxy', 'Clients send the token as `Authorization: Bearer <token>`.', {}),
    upstream: authBlock(
      'upstream',
      "Agents present the token when they connect. Agents in the cluster can instead present their pod's ServiceAccount token " +
        '(serviceAccounts), projected for the audience piko.dev/<namespace>/<name> of this PikoCluster.',
      {
        serviceAccounts: arr(serviceAccountRuleSchema, {
          description:
            'Admit agents by the ServiceAccount of their pod, verified with the TokenReview API, to the endpoints of the rules it matches; ' +
            'beside the keys above, which keep serving agents outside the cluster.',
          maxItems: 256,
        }),
      },
      ['serviceAccounts'],
    ),
    admin: authBlock(
      'admin',
      'The admin port guards every route, probes included, so the pods are then probed with a TCP connection instead of /ready and /health.',
      {},
    ),
  },
  { description: 'JWT authentication per port; a port without a block accepts anyone.' },
);

export type AuthSpec = Infer<typeof authSchema>;
export type PortAuthSpec = NonNullable<AuthSpec['proxy']>;
export type ServiceAccountRuleSpec = Infer<typeof serviceAccountRuleSchema>;
