/**
 * The CRDs of the optional APIs the operator creates objects of, from the projects' own Go
 * modules (third-party-crds.sh), for tests that install them into a control plane.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const SCRIPT = path.join(__dirname, 'third-party-crds.sh');
/** A cold module cache downloads three modules (about 40 MB). */
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

export type ThirdPartyApi = 'gateway-api' | 'cert-manager' | 'prometheus-operator';

/** The CRD files of each API, relative to its module. */
const FILES: Record<ThirdPartyApi, readonly string[]> = {
  // The standard channel, without its ValidatingAdmissionPolicy (which guards upgrades only).
  'gateway-api': ['gatewayclasses', 'gateways', 'httproutes', 'tlsroutes', 'tcproutes', 'referencegrants'].map(
    (plural) => `config/crd/standard/gateway.networking.k8s.io_${plural}.yaml`,
  ),
  'cert-manager': ['certificates', 'certificaterequests', 'issuers', 'clusterissuers'].map(
    (plural) => `deploy/crds/cert-manager.io_${plural}.yaml`,
  ),
  'prometheus-operator': ['podmonitors', 'servicemonitors', 'prometheusrules'].map(
    (plural) => `example/prometheus-operator-crd/monitoring.coreos.com_${plural}.yaml`,
  ),
};

let modules: Promise<Map<string, string>> | undefined;

/** The CRD files of `api`, as absolute paths (for `kubectl apply -f`). */
export async function thirdPartyCrdFiles(api: ThirdPartyApi): Promise<string[]> {
  modules ??= execFileAsync('bash', [SCRIPT], { timeout: DOWNLOAD_TIMEOUT_MS }).then(
    ({ stdout }) =>
      new Map(
        stdout
          .trim()
          .split('\n')
          .map((line) => line.split('=', 2) as [string, string]),
      ),
  );
  const dir = (await modules).get(api);
  if (dir === undefined) throw new Error(`${SCRIPT} printed no directory for ${api}`);
  return FILES[api].map((f) => path.join(dir, f));
}
