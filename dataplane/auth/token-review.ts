/**
 * TokenReview through the Kubernetes client: the apiserver judges the token, nothing is stored.
 * Loaded only when ServiceAccount rules are configured, since the client costs a single node
 * memory and start-up time it would never use.
 */
import { apiVersionOf, RESOURCES, type KubeClient, type KubeObject, type WriteObject } from '../kube/client';
import { ClientNodeKubeClient, loadKubeConfig } from '../kube/client-node';
import { FIELD_MANAGER } from '../registry/kubernetes/objects';
import type { TokenReviewer, TokenReviewStatus } from './service-account-verifier';

interface TokenReview extends KubeObject {
  status?: TokenReviewStatus;
}

export function kubeTokenReviewer(client: KubeClient): TokenReviewer {
  const type = RESOURCES.tokenReviews;
  return async (token, audiences, signal) => {
    const body: WriteObject & { spec: { token: string; audiences: string[] } } = {
      apiVersion: apiVersionOf(type),
      kind: type.kind,
      spec: { token, audiences: [...audiences] },
    };
    const review = await client.create<TokenReview>(type, body, { signal });
    return review.status ?? {};
  };
}

/** A reviewer on the apiserver of a kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster) and the client it owns. */
export function openTokenReviewer(kubeconfigPath?: string): { review: TokenReviewer; close(): Promise<void> } {
  const client = new ClientNodeKubeClient(loadKubeConfig(kubeconfigPath), { fieldManager: FIELD_MANAGER });
  return { review: kubeTokenReviewer(client), close: () => client.close() };
}
