/** ConfigMap `<name>-config`: the data plane's server.yaml. */
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { PikoCluster } from '../api/pikocluster';
import { childMeta, childNames } from './names';
import { CONFIG_FILE } from './pod-paths';
import type { Desired } from './desired';

export function buildConfigMap(cluster: PikoCluster, serverYaml: string): Desired<V1ConfigMap> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMeta(cluster, childNames(cluster).configMap),
    data: { [CONFIG_FILE]: serverYaml },
  };
}
