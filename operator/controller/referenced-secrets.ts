/**
 * The Secrets a PikoCluster's spec points at, each with the spec path that
 * names it, so a missing one is reported against its field. Image pull
 * secrets are left out: a public image needs none, and kubelet reports a
 * pull that fails.
 */
import type { SpecProblemReason } from '../status/condition-reasons';
import type { PikoCluster } from '../api/pikocluster';
import type { PikoClusterSpec } from '../api/pikocluster-spec';
import type { StatusProblem } from '../status/derive-status';
import { issuedSecretNames } from '../builders/certificates';
import { PORTS } from '../builders/pod-paths';

export interface SecretReference {
  /** Spec path of the reference, such as `spec.auth.proxy.hmacSecretKeyRef`. */
  field: string;
  name: string;
}

export const SECRET_NOT_FOUND = 'SecretNotFound' satisfies SpecProblemReason;

export function referencedSecrets(spec: PikoClusterSpec): SecretReference[] {
  const out: SecretReference[] = [];
  const add = (field: string, name: string | undefined): void => {
    if (name !== undefined) out.push({ field, name });
  };
  for (const port of PORTS) {
    const auth = spec.auth?.[port];
    add(`spec.auth.${port}.hmacSecretKeyRef`, auth?.hmacSecretKeyRef?.name);
    add(`spec.auth.${port}.rsaPublicKeyRef`, auth?.rsaPublicKeyRef?.name);
    add(`spec.auth.${port}.ecdsaPublicKeyRef`, auth?.ecdsaPublicKeyRef?.name);
  }
  for (const port of PORTS) {
    const tls = spec.tls?.[port];
    add(`spec.tls.${port}.secretName`, tls?.secretName);
    add(`spec.tls.${port}.clientCASecretRef`, tls?.clientCASecretRef?.name);
  }
  add('spec.tls.forwarding.rootCASecretRef', spec.tls?.forwarding?.rootCASecretRef?.name);
  add('spec.tls.forwarding.clientCertSecretName', spec.tls?.forwarding?.clientCertSecretName);
  // Read by Prometheus, not by the pods; reported all the same, as a scrape failing for it says little.
  if (spec.monitoring.podMonitor.enabled) {
    add('spec.monitoring.podMonitor.bearerTokenSecretRef', spec.monitoring.podMonitor.bearerTokenSecretRef?.name);
    add('spec.monitoring.podMonitor.caSecretRef', spec.monitoring.podMonitor.caSecretRef?.name);
  }
  return out;
}

/** Whether the spec points at a Secret of that name (in the cluster's own namespace). */
export function referencesSecret(cluster: PikoCluster, name: string): boolean {
  return referencedSecrets(cluster.spec).some((r) => r.name === name);
}

/** One problem per reference whose Secret does not exist, reason SecretNotFound, message led by the field. */
export function missingSecretProblems(cluster: PikoCluster, exists: (name: string) => boolean): StatusProblem[] {
  const namespace = cluster.metadata.namespace;
  // Written by the Certificates the operator creates: the pods wait for them (the kubelet retries the mount).
  const issued = issuedSecretNames(cluster);
  return referencedSecrets(cluster.spec)
    .filter((r) => !exists(r.name) && !issued.has(r.name))
    .map((r) => ({
      reason: SECRET_NOT_FOUND,
      retryable: true,
      message: `${r.field}: Secret ${JSON.stringify(r.name)} not found in namespace ${JSON.stringify(namespace)}`,
    }));
}
