/**
 * Kubernetes name syntaxes, as regular-expression source strings so the same
 * text goes into the CRD schema (`pattern`) and into the operator's own
 * checks.
 */

/** DNS-1123 subdomain: Secret, ConfigMap and PriorityClass names. */
export const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const DNS_SUBDOMAIN_MAX = 253;

/** A key inside a Secret or ConfigMap. */
export const SECRET_KEY = '^[-._a-zA-Z0-9]+$';

/**
 * A PikoCluster's name: it is the data plane's `cluster.name` (at most 42
 * characters, Piko-side), and it prefixes Service names, which must be
 * DNS-1035 labels (starting with a letter).
 */
export const CLUSTER_NAME = '^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$';
export const CLUSTER_NAME_MAX = 42;

/** The name part of a label or annotation key, and a label value when not empty. */
const QUALIFIED_NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const PREFIX = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';

/** A label or annotation key: `[prefix/]name`, prefix a DNS subdomain of at most 253 characters. */
export const QUALIFIED_KEY = `^(${PREFIX}/)?${QUALIFIED_NAME}$`;
export const QUALIFIED_KEY_PREFIX_MAX = 253;

/** A label value: empty or a qualified name of at most 63 characters. */
export const LABEL_VALUE = `^(${QUALIFIED_NAME})?$`;

/** A container image repository, registry host and port included (`ghcr.io/org/piko`, `host:5000/piko`). */
export const IMAGE_REPOSITORY = '^[a-z0-9]+([._:/-][a-z0-9]+)*$';
/** An image tag, as the OCI distribution spec defines it. */
export const IMAGE_TAG = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';
export const IMAGE_DIGEST = '^sha256:[a-f0-9]{64}$';

/** True when `key` is a valid label or annotation key. */
export function isQualifiedKey(key: string): boolean {
  if (!new RegExp(QUALIFIED_KEY).test(key)) return false;
  const slash = key.indexOf('/');
  return slash < 0 || slash <= QUALIFIED_KEY_PREFIX_MAX;
}

export function isLabelValue(value: string): boolean {
  return new RegExp(LABEL_VALUE).test(value);
}
