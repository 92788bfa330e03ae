/**
 * TLS Secrets as files in the pod: one read-only volume per use, and the
 * paths server.yaml points at. One function decides both, so the mounts and
 * the config cannot disagree.
 */
import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { PikoClusterSpec } from '../api/pikocluster-spec';
import { PORTS, TLS_DIR, type PortName } from './pod-paths';

// Readable by the pod's group (fsGroup) only: private keys live here.
const SECRET_FILE_MODE = 0o440;

export interface SecretMount {
  volume: V1Volume;
  mount: V1VolumeMount;
}

export interface PortTlsFiles {
  cert: string;
  key: string;
  clientCas?: string;
}

export interface ForwardingTlsFiles {
  rootCas?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  insecureSkipVerify: boolean;
}

export interface TlsFiles {
  mounts: SecretMount[];
  ports: Partial<Record<PortName, PortTlsFiles>>;
  forwarding?: ForwardingTlsFiles;
}

function secretMount(volume: string, secretName: string, items: { key: string; path: string }[]): SecretMount {
  return {
    volume: { name: volume, secret: { secretName, items, defaultMode: SECRET_FILE_MODE } },
    mount: { name: volume, mountPath: `${TLS_DIR}/${volume.replace(/^tls-/, '')}`, readOnly: true },
  };
}

const keyPair = (volume: string, secretName: string): SecretMount =>
  secretMount(volume, secretName, [
    { key: 'tls.crt', path: 'tls.crt' },
    { key: 'tls.key', path: 'tls.key' },
  ]);

const caFile = (volume: string, ref: { name: string; key: string }): SecretMount =>
  secretMount(volume, ref.name, [{ key: ref.key, path: 'ca.crt' }]);

export function tlsFiles(spec: PikoClusterSpec): TlsFiles {
  const out: TlsFiles = { mounts: [], ports: {} };
  const add = (m: SecretMount, file: string): string => {
    out.mounts.push(m);
    return `${m.mount.mountPath}/${file}`;
  };
  for (const port of PORTS) {
    const tls = spec.tls?.[port];
    if (tls === undefined) continue;
    const pair = keyPair(`tls-${port}`, tls.secretName);
    const files: PortTlsFiles = { cert: add(pair, 'tls.crt'), key: `${pair.mount.mountPath}/tls.key` };
    if (tls.clientCASecretRef !== undefined) files.clientCas = add(caFile(`tls-${port}-client-ca`, tls.clientCASecretRef), 'ca.crt');
    out.ports[port] = files;
  }
  const fwd = spec.tls?.forwarding;
  if (fwd !== undefined) {
    const files: ForwardingTlsFiles = { insecureSkipVerify: fwd.insecureSkipVerify ?? false };
    if (fwd.rootCASecretRef !== undefined) files.rootCas = add(caFile('tls-forwarding-ca', fwd.rootCASecretRef), 'ca.crt');
    if (fwd.clientCertSecretName !== undefined) {
      const pair = keyPair('tls-forwarding-client', fwd.clientCertSecretName);
      files.cert = add(pair, 'tls.crt');
      files.key = `${pair.mount.mountPath}/tls.key`;
    }
    if (fwd.serverName !== undefined) files.serverName = fwd.serverName;
    out.forwarding = files;
  }
  return out;
}
