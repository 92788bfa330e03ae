/**
 * How each auth key in a Secret reaches `piko server`. The server takes key
 * material inline (Piko's `hmac_secret_key`, `rsa_public_key`), so each key
 * becomes an environment variable from its Secret, and then:
 * - the HMAC secret is referenced from the YAML as '${VAR}', which keeps it
 *   off the command line (ps shows flags);
 * - a PEM public key is passed as a flag with Kubernetes' `$(VAR)`
 *   expansion, because `--config.expand-env` substitutes text into the YAML
 *   and a multi-line PEM cannot survive that, while a flag carries it byte
 *   for byte. Public keys are not secret, so the command line is fine.
 */
import type { V1EnvVar } from '@kubernetes/client-node';
import type { PikoClusterSpec } from '../api/pikocluster-spec';
import { PORTS, type PortName } from './pod-paths';

export type KeyKind = 'hmac' | 'rsa' | 'ecdsa';

export interface AuthKey {
  port: PortName;
  kind: KeyKind;
  env: string;
  secret: { name: string; key: string };
}

const FLAG_KEY: Readonly<Record<KeyKind, string>> = {
  hmac: 'hmac-secret-key',
  rsa: 'rsa-public-key',
  ecdsa: 'ecdsa-public-key',
};

/** Every key the spec references, in a fixed order (port, then hmac, rsa, ecdsa). */
export function authKeys(spec: PikoClusterSpec): AuthKey[] {
  const out: AuthKey[] = [];
  for (const port of PORTS) {
    const auth = spec.auth?.[port];
    if (auth === undefined) continue;
    const refs: [KeyKind, { name: string; key: string } | undefined][] = [
      ['hmac', auth.hmacSecretKeyRef],
      ['rsa', auth.rsaPublicKeyRef],
      ['ecdsa', auth.ecdsaPublicKeyRef],
    ];
    for (const [kind, ref] of refs) {
      if (ref === undefined) continue;
      out.push({
        port,
        kind,
        env: `PIKO_${port.toUpperCase()}_${FLAG_KEY[kind].toUpperCase().replace(/-/g, '_')}`,
        secret: { name: ref.name, key: ref.key },
      });
    }
  }
  return out;
}

export function authKeyEnv(keys: readonly AuthKey[]): V1EnvVar[] {
  return keys.map((k) => ({ name: k.env, valueFrom: { secretKeyRef: { name: k.secret.name, key: k.secret.key } } }));
}

/** `--proxy.auth.rsa-public-key=$(PIKO_PROXY_RSA_PUBLIC_KEY)` for each PEM key. */
export function authKeyArgs(keys: readonly AuthKey[]): string[] {
  return keys.filter((k) => k.kind !== 'hmac').map((k) => `--${k.port}.auth.${FLAG_KEY[k.kind]}=$(${k.env})`);
}
