/**
 * Endpoint IDs, shared by the config, the proxy and the upstream server, so
 * this module imports nothing.
 *
 * Piko accepts any string. We are stricter: an ID travels in URL paths
 * (`/piko/v1/upstream/:id`), in a header and in a Host label, and later in
 * Kubernetes object names and metrics labels, where `/`, spaces or control
 * characters would be ambiguous or unsafe. The set is RFC 3986's
 * "unreserved" characters, which need no escaping anywhere.
 */

export const MAX_ENDPOINT_ID_LENGTH = 128;

const ALLOWED = /^[A-Za-z0-9._~-]$/;

/** An error message for an invalid endpoint ID, or undefined when it is valid. */
export function validateEndpointId(id: string): string | undefined {
  if (id.length === 0) return 'endpoint id is empty';
  for (const ch of id) {
    if (!ALLOWED.test(ch)) {
      const shown = JSON.stringify(ch);
      return `endpoint id ${JSON.stringify(id)} contains ${shown}; only letters, digits and . _ ~ - are allowed`;
    }
  }
  if (id.length > MAX_ENDPOINT_ID_LENGTH) {
    return `endpoint id is ${id.length} characters long; the limit is ${MAX_ENDPOINT_ID_LENGTH}`;
  }
  return undefined;
}
