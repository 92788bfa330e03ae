/** The data-plane image reference: the operator's default, with whatever parts the spec overrides. */
import type { ImageSpec } from '../api/pikocluster-spec';

export interface ImageReference {
  repository: string;
  tag?: string;
  digest?: string;
}

/** Splits `host:5000/org/piko:1.2@sha256:...`; a colon before the last slash is a registry port. */
export function parseImage(ref: string): ImageReference {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  const out: ImageReference = { repository: rest };
  if (colon > rest.lastIndexOf('/')) {
    out.repository = rest.slice(0, colon);
    out.tag = rest.slice(colon + 1);
  }
  if (digest !== undefined) out.digest = digest;
  return out;
}

/**
 * A repository set without a tag keeps the default's tag (or digest): the
 * usual reason is a mirror of the same release.
 */
export function resolveImage(spec: ImageSpec, defaultImage: string): string {
  const def = parseImage(defaultImage);
  if (spec.repository === undefined && spec.tag === undefined && spec.digest === undefined) return defaultImage;
  const repository = spec.repository ?? def.repository;
  if (spec.digest !== undefined) return `${repository}@${spec.digest}`;
  if (spec.tag !== undefined) return `${repository}:${spec.tag}`;
  if (def.tag !== undefined) return `${repository}:${def.tag}`;
  if (def.digest !== undefined) return `${repository}@${def.digest}`;
  return repository;
}
