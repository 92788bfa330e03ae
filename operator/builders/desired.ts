/** A child object as the builders return it: kind, apiVersion, name and namespace always set. */
import type { V1ObjectMeta } from '@kubernetes/client-node';

export type Desired<T> = T & {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace: string };
};
