/**
 * The sidecar injector as `piko operator` runs it: the admission server, and where its
 * certificate comes from (the operator's own Secret, or files cert-manager keeps). Loaded only
 * when --webhook.bind-addr is set, with node-forge behind it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { KubeClient } from '../../dataplane/kube/client';
import type { Logger } from '../../dataplane/log/logger';
import { TlsReloader } from '../../dataplane/net/tls-reload';
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
  private files: TlsReloader<{ cert: string; key: string }> | undefined;

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
      const dir = this.o.config.certDir;
      const cert = path.join(dir, 'tls.crt');
      const key = path.join(dir, 'tls.key');
      this.files = new TlsReloader({
        files: [cert, key],
        load: () => {
          const pair = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
          // A certificate renewed before its key does not make a pair: keep serving the last one.
          tls.createSecureContext(pair);
          return pair;
        },
        apply: (pair) => this.server.setCertificate(pair),
        what: `webhook certificate in ${dir}`,
        logger: this.o.logger,
        intervalMs: this.o.syncIntervalMs ?? CERT_DIR_POLL_MS,
        // cert-manager may not have written them yet.
        inUse: false,
      });
      this.files.check();
      this.files.start();
    }
    return addr;
  }

  /** One certificate sync now (tests drive rotation with it). */
  async sync(): Promise<void> {
    if (this.tls !== undefined) await this.tls.sync();
    else this.files?.check();
  }

  async close(): Promise<void> {
    this.tls?.stop();
    this.files?.stop();
    await this.server.close();
  }
}
