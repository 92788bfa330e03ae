/**
 * The webhook's certificates, kept by the operator in a Secret of its namespace and trusted by the
 * apiserver through the MutatingWebhookConfiguration's caBundle. Level-triggered: each sync reads
 * both, and moves them one safe step toward "a valid serving certificate from a CA the bundle
 * holds". Every replica syncs (each serves the webhook, standbys too); writes are conditional on
 * the Secret's resourceVersion, so two replicas cannot both issue.
 *
 * A CA rotation never breaks an admission: the new CA first joins the bundle beside the old one,
 * and only once the configuration carries it is a serving certificate issued from it.
 */
import { apiVersionOf, RESOURCES, type KubeClient, type KubeObject, type ResourceType } from '../../dataplane/kube/client';
import { isApiError } from '../../dataplane/kube/errors';
import type { Logger } from '../../dataplane/log/logger';
import { startTimer, type Timer } from '../../dataplane/time/timer';
import { dueForRenewal, issueCa, issueServing, servesFor, stillValid, type KeyPairPem } from './webhook-certificates';

export const MUTATING_WEBHOOK_CONFIGURATIONS: ResourceType = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'MutatingWebhookConfiguration',
  plural: 'mutatingwebhookconfigurations',
};

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

interface WebhookConfiguration extends KubeObject {
  webhooks?: { name: string; clientConfig?: { caBundle?: string; service?: { name?: string; namespace?: string } } }[];
}

export interface WebhookTlsOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** The MutatingWebhookConfiguration whose webhooks get the bundle. */
  configurationName: string;
  dnsNames: readonly string[];
  /** Told of each serving certificate to use (the first, and every change). */
  onServing: (pair: KeyPairPem) => void;
  logger: Logger;
  now?: () => number;
  /** Between syncs; a failed sync is retried sooner. */
  intervalMs?: number;
  /** Lifetimes of what is issued; 10 years and 1 year by default. */
  validity?: { caMs: number; servingMs: number };
}

const DEFAULT_INTERVAL_MS = 10 * 60_000;
const RETRY_MS = 5_000;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => (s === undefined ? '' : Buffer.from(s, 'base64').toString());

/** The certificates of a PEM bundle, each as its own PEM. */
function splitBundle(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)?.map((c) => (c.endsWith('\n') ? c : `${c}\n`)) ?? [];
}

export class WebhookTls {
  private readonly now: () => number;
  private timer: Timer | undefined;
  private stopped = false;
  private served = '';
  private missingLogged = false;

  constructor(private readonly o: WebhookTlsOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Syncs now, then keeps syncing until stop(). Resolves after the first sync, whatever its outcome. */
  async start(): Promise<void> {
    await this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.clear();
  }

  private async tick(): Promise<void> {
    let next = this.o.intervalMs ?? DEFAULT_INTERVAL_MS;
    try {
      await this.sync();
    } catch (err) {
      next = RETRY_MS;
      this.o.logger.warn('webhook certificate sync failed', { error: err instanceof Error ? err.message : String(err), retryInMs: next });
    }
    if (!this.stopped) this.timer = startTimer(next, () => void this.tick()).unref();
  }

  /** One step toward a valid state; several may be needed (a CA rotation takes two). */
  async sync(): Promise<void> {
    const { client, namespace, secretName } = this.o;
    const now = this.now();
    // Nothing to serve for without the configuration (the chart is being uninstalled, or not yet
    // installed): issuing now would leave a Secret behind.
    let config: WebhookConfiguration;
    try {
      config = await client.get<WebhookConfiguration>(MUTATING_WEBHOOK_CONFIGURATIONS, '', this.o.configurationName);
    } catch (err) {
      if (!isApiError(err, 'NOT_FOUND')) throw err;
      if (!this.missingLogged)
        this.o.logger.warn('no webhook configuration; not issuing certificates', { configuration: this.o.configurationName });
      this.missingLogged = true;
      return;
    }
    this.missingLogged = false;
    let secret: SecretObject | undefined;
    try {
      secret = await client.get<SecretObject>(RESOURCES.secrets, namespace, secretName);
    } catch (err) {
      if (!isApiError(err, 'NOT_FOUND')) throw err;
    }
    if (secret === undefined) {
      const ca = issueCa(now, this.o.validity?.caMs);
      const serving = issueServing(ca, this.o.dnsNames, now, this.o.validity?.servingMs);
      const created = this.secretObject(undefined, ca, [ca.cert], serving);
      // Owned by the configuration it serves, so the garbage collector takes it when that goes.
      created.metadata!.ownerReferences = [
        {
          apiVersion: apiVersionOf(MUTATING_WEBHOOK_CONFIGURATIONS),
          kind: MUTATING_WEBHOOK_CONFIGURATIONS.kind,
          name: this.o.configurationName,
          uid: config.metadata?.uid ?? '',
        },
      ];
      secret = await client.create<SecretObject>(RESOURCES.secrets, created);
      this.o.logger.info('created webhook certificates', { secret: `${namespace}/${secretName}` });
    }

    const data = secret.data ?? {};
    let bundle = splitBundle(unb64(data['ca.crt']));
    let ca: KeyPairPem = { cert: bundle[0] ?? '', key: unb64(data['ca.key']) };
    let serving: KeyPairPem = { cert: unb64(data['tls.crt']), key: unb64(data['tls.key']) };

    if (ca.cert === '' || ca.key === '' || dueForRenewal(ca.cert, now)) {
      // The new CA joins the bundle; the serving certificate stays until the apiserver trusts it.
      const fresh = issueCa(now, this.o.validity?.caMs);
      bundle = [fresh.cert, ...bundle.filter((c) => stillValid(c, now))];
      ca = fresh;
      secret = await this.update(secret, ca, bundle, serving);
      this.o.logger.info('rotated the webhook CA', { secret: `${namespace}/${secretName}` });
    }

    const trusted = await this.publishBundle(config, bundle.join(''));
    // With no usable certificate there is nothing a new one can break; otherwise wait until the
    // apiserver trusts the CA it would come from.
    const usable = stillValid(serving.cert, now) && bundle.some((c) => servesFor(serving.cert, c, this.o.dnsNames));
    if (!usable || (trusted && (dueForRenewal(serving.cert, now) || !servesFor(serving.cert, ca.cert, this.o.dnsNames)))) {
      serving = issueServing(ca, this.o.dnsNames, now, this.o.validity?.servingMs);
      // Older CAs stay in the bundle until they expire: another replica may serve a certificate
      // they signed until its next sync.
      secret = await this.update(secret, ca, bundle, serving);
      this.o.logger.info('renewed the webhook serving certificate', { secret: `${namespace}/${secretName}` });
    }
    this.serve({ cert: unb64(secret.data?.['tls.crt']), key: unb64(secret.data?.['tls.key']) });
  }

  private serve(pair: KeyPairPem): void {
    if (pair.cert === '' || pair.cert === this.served) return;
    this.served = pair.cert;
    this.o.onServing(pair);
  }

  private secretObject(prior: SecretObject | undefined, ca: KeyPairPem, bundle: readonly string[], serving: KeyPairPem): SecretObject {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: this.o.secretName,
        namespace: this.o.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'piko-operator', 'app.kubernetes.io/component': 'webhook' },
        ...(prior?.metadata?.resourceVersion === undefined ? {} : { resourceVersion: prior.metadata.resourceVersion }),
        ...(prior?.metadata?.ownerReferences === undefined ? {} : { ownerReferences: prior.metadata.ownerReferences }),
      },
      // Opaque: one made by hand (empty, to be filled in) may be, and a Secret's type cannot change.
      type: 'Opaque',
      data: { 'ca.crt': b64(bundle.join('')), 'ca.key': b64(ca.key), 'tls.crt': b64(serving.cert), 'tls.key': b64(serving.key) },
    };
  }

  /** A PUT conditional on the version read: a replica that lost the race fails here and re-reads next sync. */
  private update(prior: SecretObject, ca: KeyPairPem, bundle: readonly string[], serving: KeyPairPem): Promise<SecretObject> {
    return this.o.client.update<SecretObject>(RESOURCES.secrets, this.secretObject(prior, ca, bundle, serving));
  }

  /**
   * Puts the bundle into every webhook of the configuration that calls our Service. True when
   * the configuration then carries exactly it (the apiserver trusts what it holds).
   */
  private async publishBundle(config: WebhookConfiguration, bundle: string): Promise<boolean> {
    const type = MUTATING_WEBHOOK_CONFIGURATIONS;
    const caBundle = b64(bundle);
    const webhooks = config.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig?.caBundle === caBundle)) return true;
    const updated = {
      ...config,
      apiVersion: apiVersionOf(type),
      kind: type.kind,
      webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle } })),
    };
    await this.o.client.update(type, updated);
    this.o.logger.info('published the webhook CA bundle', { configuration: this.o.configurationName });
    // The apiserver picks up a configuration change within a second or so; the next sync goes on from here.
    return false;
  }
}
