/** Files generated from the PikoCluster schema, relative to the repository root. */
import { CRD_REFERENCE_PATH, renderCrdReference } from './crd-reference';
import { CRD_YAML_PATH, renderCrdYaml } from './crd-yaml';

export interface GeneratedFile {
  path: string;
  render: () => string;
}

export const GENERATED_FILES: readonly GeneratedFile[] = [
  { path: CRD_YAML_PATH, render: renderCrdYaml },
  { path: CRD_REFERENCE_PATH, render: renderCrdReference },
];
