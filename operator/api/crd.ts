/** The PikoCluster CustomResourceDefinition, built from the schema in this folder. */
import { CATEGORIES, CRD_NAME, GROUP, KIND, LIST_KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, pikoClusterSchema } from './pikocluster';
import type { JSONSchemaProps } from './schema-builder';

export interface PrinterColumn {
  name: string;
  type: 'integer' | 'number' | 'string' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 shows in `kubectl get`; higher only with `-o wide`. */
  priority?: number;
}

/** apiextensions.k8s.io/v1 CustomResourceDefinition in wire form (client-node's types rename schema keys). */
export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: 'Namespaced' | 'Cluster';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources: {
        status: Record<string, never>;
        scale: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
      };
      additionalPrinterColumns: PrinterColumn[];
    }[];
  };
}

const readyCondition = (field: string): string => `.status.conditions[?(@.type=="Ready")].${field}`;

export const PRINTER_COLUMNS: readonly PrinterColumn[] = [
  { name: 'Ready', type: 'string', jsonPath: readyCondition('status'), description: 'Status of the Ready condition.' },
  { name: 'Replicas', type: 'integer', jsonPath: '.status.replicas', description: 'Pods the StatefulSet has.' },
  { name: 'Ready Replicas', type: 'integer', jsonPath: '.status.readyReplicas', description: 'Pods that are ready.', priority: 1 },
  { name: 'Endpoints', type: 'integer', jsonPath: '.status.endpoints', description: 'Endpoints with an upstream.' },
  { name: 'Upstreams', type: 'integer', jsonPath: '.status.upstreams', description: 'Upstream connections.' },
  { name: 'Reason', type: 'string', jsonPath: readyCondition('reason'), description: 'Reason of the Ready condition.', priority: 1 },
  {
    name: 'Proxy URL',
    type: 'string',
    jsonPath: '.status.urls.proxy',
    description: 'Where clients reach the proxy from outside.',
    priority: 1,
  },
  {
    name: 'Agents URL',
    type: 'string',
    jsonPath: '.status.urls.upstream',
    description: 'Where agents outside the cluster connect (their --connect.url).',
    priority: 1,
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  // Last, as kubectl shows it in full: what is wrong, in the operator's words.
  { name: 'Message', type: 'string', jsonPath: readyCondition('message'), description: 'Message of the Ready condition.', priority: 1 },
];

export function buildCrd(): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, labels: { 'app.kubernetes.io/name': 'piko', 'app.kubernetes.io/part-of': 'piko' } },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: LIST_KIND,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: [...CATEGORIES],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: pikoClusterSchema() },
          subresources: {
            status: {},
            // `kubectl scale` and HorizontalPodAutoscalers act on spec.replicas.
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: PRINTER_COLUMNS.map((c) => ({ ...c })),
        },
      ],
    },
  };
}
