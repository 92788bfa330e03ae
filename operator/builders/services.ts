/**
 * The Services: `<name>-nodes`, headless, the StatefulSet's governing Service
 * (stable pod DNS names); `<name>-proxy` for clients and `<name>-upstream`
 * for agents, shaped by spec.services.
 */
import type { V1Service, V1ServicePort, V1ServiceSpec } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import type { ServiceSpec } from '../api/spec-services';
import { childMeta, childNames, selectorLabels } from './names';
import { PORTS } from './pod-paths';
import type { Desired } from './desired';

export function buildHeadlessService(cluster: PikoCluster): Desired<V1Service> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(cluster, childNames(cluster).headlessService),
    spec: {
      clusterIP: 'None',
      selector: selectorLabels(cluster),
      // Only ready pods get DNS records: a starting or draining pod must not
      // be picked by anything resolving the Service.
      publishNotReadyAddresses: false,
      ports: PORTS.map((name) => ({ name, port: cluster.spec.ports[name], targetPort: name, protocol: 'TCP' })),
    },
  };
}

function portService(cluster: PikoCluster, port: 'proxy' | 'upstream', name: string): Desired<V1Service> {
  const svc: ServiceSpec = cluster.spec.services[port];
  const servicePort: V1ServicePort = {
    name: port,
    port: svc.port ?? cluster.spec.ports[port],
    targetPort: port,
    protocol: 'TCP',
  };
  if (svc.nodePort !== undefined) servicePort.nodePort = svc.nodePort;
  const spec: V1ServiceSpec = { type: svc.type, selector: selectorLabels(cluster), ports: [servicePort] };
  if (svc.type === 'LoadBalancer' && svc.loadBalancerClass !== undefined) spec.loadBalancerClass = svc.loadBalancerClass;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(cluster, name, svc.annotations === undefined ? {} : { annotations: svc.annotations }),
    spec,
  };
}

export function buildProxyService(cluster: PikoCluster): Desired<V1Service> {
  return portService(cluster, 'proxy', childNames(cluster).proxyService);
}

export function buildUpstreamService(cluster: PikoCluster): Desired<V1Service> {
  return portService(cluster, 'upstream', childNames(cluster).upstreamService);
}
