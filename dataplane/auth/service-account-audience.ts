/**
 * The audience a PikoCluster's agents request for their projected ServiceAccount token and its
 * servers require: the contract between the operator (which renders both sides) and the server.
 * Naming the cluster keeps a token minted for one PikoCluster from opening tunnels on another.
 */
export function serviceAccountAudience(namespace: string, name: string): string {
  return `piko.dev/${namespace}/${name}`;
}
