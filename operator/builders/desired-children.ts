/** Everything a PikoCluster owns, as data: what the reconciler applies, in order. */
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import type { OptionalApiReason } from '../status/condition-reasons';
import { buildClusterSecret } from './cluster-secret';
import { buildConfigMap } from './config-map';
import type { Desired } from './desired';
import { resolveImage } from './image';
import { buildCertificates, CERT_MANAGER_API_VERSION } from './certificates';
import { buildGatewayRoutes, GATEWAY_API_VERSION } from './gateway-routes';
import { buildIngresses } from './ingresses';
import { buildNetworkPolicy, type NetworkPolicyInputs } from './network-policy';
import { buildPodDisruptionBudget } from './pod-disruption-budget';
import { buildPodMonitor, PROMETHEUS_OPERATOR_API_VERSION } from './pod-monitor';
import { buildRole, buildRoleBinding, buildServiceAccount } from './dataplane-role';
import { configHash, renderServerConfig } from './server-config';
import { buildHeadlessService, buildProxyService, buildUpstreamService } from './services';
import { buildStatefulSet } from './stateful-set';

/** What the builders need besides the PikoCluster, resolved by the caller. */
export interface BuildInputs {
  /** The operator's own data-plane image (`repository:tag`), used where the spec names none. */
  defaultImage: string;
  /**
   * A freshly generated cluster secret (generateClusterSecret()). Used only
   * when the Secret does not exist yet; an existing one is never replaced.
   */
  clusterSecretValue: string;
  /** The operator's namespace and the apiserver's addresses, for the NetworkPolicy; unknown when unset. */
  network?: NetworkPolicyInputs;
}

export interface DesiredChildren {
  /** Applied on every reconcile with server-side apply, in this order (the StatefulSet last, once what it mounts exists). */
  apply: Desired<KubernetesObject>[];
  /** Created when absent and otherwise left alone; created before `apply`. */
  createOnly: Desired<V1Secret>[];
}

/** An API served only where its CRDs are installed: the operator watches its kinds once discovery lists them. */
export interface OptionalApi {
  /** For messages: `the Gateway API`. */
  name: string;
  /** Ready=False reason while a cluster wants a kind of it that is not served. */
  reason: OptionalApiReason;
  /** What the user installs. */
  install: string;
}

export const GATEWAY_API: OptionalApi = {
  name: 'the Gateway API',
  reason: 'GatewayAPINotInstalled',
  install: "its standard channel's CRDs (v1.5 or later, which serve TLSRoute and TCPRoute as v1)",
};

export const PROMETHEUS_OPERATOR: OptionalApi = {
  name: "the Prometheus Operator's PodMonitor",
  reason: 'PrometheusOperatorNotInstalled',
  install: 'the Prometheus Operator (or its CRDs), or set spec.monitoring.podMonitor.enabled to false',
};

export const CERT_MANAGER: OptionalApi = {
  name: "cert-manager's Certificate",
  reason: 'CertManagerNotInstalled',
  install: 'cert-manager (v1.x), or name Secrets you issue yourself and drop spec.tls.issuerRef',
};

export interface OwnedKind {
  apiVersion: string;
  kind: string;
  /** Set for kinds of an optional API. */
  optional?: OptionalApi;
}

/** Kinds a PikoCluster may own: owned objects of these kinds that `apply` no longer lists are to be deleted. */
export const OWNED_KINDS: readonly OwnedKind[] = [
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
  { apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute', optional: GATEWAY_API },
  { apiVersion: GATEWAY_API_VERSION, kind: 'TLSRoute', optional: GATEWAY_API },
  { apiVersion: GATEWAY_API_VERSION, kind: 'TCPRoute', optional: GATEWAY_API },
  { apiVersion: PROMETHEUS_OPERATOR_API_VERSION, kind: 'PodMonitor', optional: PROMETHEUS_OPERATOR },
  { apiVersion: CERT_MANAGER_API_VERSION, kind: 'Certificate', optional: CERT_MANAGER },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'v1', kind: 'Secret' },
];

/** Assumes validateSpec(cluster) found no problem. */
export function buildChildren(cluster: PikoCluster, inputs: BuildInputs): DesiredChildren {
  const serverYaml = renderServerConfig(cluster);
  const pdb = buildPodDisruptionBudget(cluster);
  const podMonitor = buildPodMonitor(cluster);
  const networkPolicy = buildNetworkPolicy(cluster, inputs.network ?? { apiServer: undefined });
  return {
    apply: [
      buildServiceAccount(cluster),
      buildRole(cluster),
      buildRoleBinding(cluster),
      buildConfigMap(cluster, serverYaml),
      buildHeadlessService(cluster),
      buildProxyService(cluster),
      buildUpstreamService(cluster),
      ...(pdb === undefined ? [] : [pdb]),
      ...(networkPolicy === undefined ? [] : [networkPolicy]),
      ...buildIngresses(cluster),
      ...buildGatewayRoutes(cluster),
      ...buildCertificates(cluster),
      ...(podMonitor === undefined ? [] : [podMonitor]),
      buildStatefulSet(cluster, {
        image: resolveImage(cluster.spec.image, inputs.defaultImage),
        configHash: configHash(serverYaml),
      }),
    ],
    createOnly: [buildClusterSecret(cluster, inputs.clusterSecretValue)],
  };
}
