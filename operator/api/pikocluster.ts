/** The PikoCluster kind: its names, its root schema and its TypeScript type. */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { CLUSTER_NAME, CLUSTER_NAME_MAX } from './k8s-patterns';
import { specSchema, type PikoClusterSpec } from './pikocluster-spec';
import { statusSchema, type PikoClusterStatus } from './pikocluster-status';
import { obj, str, type JSONSchemaProps } from './schema-builder';

export const GROUP = 'piko.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'PikoCluster';
export const LIST_KIND = 'PikoClusterList';
export const PLURAL = 'pikoclusters';
export const SINGULAR = 'pikocluster';
export const SHORT_NAMES: readonly string[] = ['pkc'];
export const CATEGORIES: readonly string[] = ['piko'];
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** Metadata as read from the API server, where these are always set. */
export type PikoClusterMeta = V1ObjectMeta & { name: string; namespace: string; uid: string };

export interface PikoCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: PikoClusterMeta;
  spec: PikoClusterSpec;
  status?: PikoClusterStatus;
}

const rootSchema = obj(
  {
    apiVersion: str({ description: 'piko.dev/v1alpha1.' }),
    kind: str({ description: 'PikoCluster.' }),
    spec: specSchema,
    status: statusSchema,
  },
  {
    description: 'A Piko data plane: a StatefulSet of `piko server` pods sharing endpoints through the Kubernetes registry.',
    validations: [
      {
        rule: `self.metadata.name.matches('${CLUSTER_NAME}')`,
        message:
          `metadata.name must be at most ${CLUSTER_NAME_MAX} lower-case letters, digits or '-', starting with a letter ` +
          'and ending with a letter or digit: it names the cluster in the registry and prefixes its Services',
      },
    ],
  },
);

/** openAPIV3Schema of the CRD; `metadata` is left to the API server, as in every CRD. */
export function pikoClusterSchema(): JSONSchemaProps {
  const props = structuredClone(rootSchema.props);
  const { apiVersion, kind, ...rest } = props.properties ?? {};
  props.properties = {
    ...(apiVersion === undefined ? {} : { apiVersion }),
    ...(kind === undefined ? {} : { kind }),
    metadata: { type: 'object' },
    ...rest,
  };
  return props;
}

/** The spec schema alone, for defaulting and checks. */
export function pikoClusterSpecSchema(): JSONSchemaProps {
  return structuredClone(specSchema.props);
}
