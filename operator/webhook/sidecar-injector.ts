/**
 * The sidecar injector as `piko operator` runs it: the admission server, and where its
 * certificate comes from (the operator's own Secret, or files cert-manager keeps). Loaded only
 * when --webhook.bind-addr is set, with node-forge behind it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { KubeClient } from '../../dataplane/kube/client';
import type { Logger } from '../../dataplane/log/logger';
import type { PikoCluster } from '../api/pikocluster';
import type { WebhookConfig } from '../operator-config';
import { AdmissionServer } from './admission-server';
import { serviceDnsNames } from './webhook-certificates';
import { WebhookTls } from './webhook-tls';

export interface SidecarInjectorOptions {
  config: WebhookConfig;
  /** The operator's namespace, where the webhook Service and Secret live. */
  namespace: string;
  client: KubeClient;
  lookup(namespace: string, name: string): PikoCluster | undefined;
  notReady?: () => string | undefined;
  defaultImage: string;
  logger: Logger;
  metricsRegistry: Registry;
  /** Between certificate syncs (or file checks with certDir). */
  syncIntervalMs?: number;
  /** Certificate lifetimes (tests rotate in seconds). */
  validity?: { caMs: number; servingMs: number };
}

const CERT_DIR_POLL_MS = 10_000;

export class SidecarInjector {
  private readonly server: AdmissionServer;
  private readonly tls: WebhookTls | undefined;
  private filesTimer: NodeJS.Timeout | undefined;
  private lastFiles = '';
  private filesFailing = false;

  constructor(private readonly o: SidecarInjectorOptions) {
    this.server = new AdmissionServer({
      lookup: o.lookup,
      ...(o.notReady === undefined ? {} : { notReady: o.notReady }),
      defaultImage: o.defaultImage,
      logger: o.logger,
      metricsRegistry: o.metricsRegistry,
    });
    this.tls =
      o.config.certDir === ''
        ? new WebhookTls({
            client: o.client,
            namespace: o.namespace,
            secretName: o.config.secret,
            configurationName: o.config.configuration,
            dnsNames: serviceDnsNames(o.config.service, o.namespace),
            onServing: (pair) => this.server.setCertificate(pair),
            logger: o.logger,
            ...(o.validity === undefined ? {} : { validity: o.validity }),
            ...(o.syncIntervalMs === undefined ? {} : { intervalMs: o.syncIntervalMs }),
          })
        : undefined;
  }

  /** Listens, and resolves once a first certificate sync (or read) has been attempted. */
  async start(): Promise<AddressInfo> {
    const addr = await this.server.start(this.o.config.bindAddr, '--webhook.bind-addr');
    if (this.tls !== undefined) {
      await this.tls.start();
    } else {
      this.readFiles();
      const every = this.o.syncIntervalMs ?? CERT_DIR_POLL_MS;
      this.filesTimer = setInterval(() => this.readFiles(), every).unref();
    }
    return addr;
  }

  /** One certificate sync now (tests drive rotation with it). */
  async sync(): Promise<void> {
    if (this.tls !== undefined) await this.tls.sync();
    else this.readFiles();
  }

  async close(): Promise<void> {
    this.tls?.stop();
    clearInterval(this.filesTimer);
    await this.server.close();
  }

  private readFiles(): void {
    const dir = this.o.config.certDir;
    try {
      const cert = readFileSync(path.join(dir, 'tls.crt'), 'utf8');
      const key = readFileSync(path.join(dir, 'tls.key'), 'utf8');
      this.filesFailing = false;
      if (cert + key !== this.lastFiles) {
        this.server.setCertificate({ cert, key });
        this.lastFiles = cert + key;
        this.o.logger.info('loaded the webhook certificate', { dir });
      }
    } catch (err) {
      // Once per run of failures, not at every poll; the last good certificate keeps serving.
      if (!this.filesFailing)
        this.o.logger.warn('cannot read the webhook certificate', { dir, error: err instanceof Error ? err.message : String(err) });
      this.filesFailing = true;
    }
  }
}
