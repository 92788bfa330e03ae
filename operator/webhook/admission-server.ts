/**
 * The mutating admission webhook's HTTPS server: AdmissionReview in, the injector's decision out.
 * The apiserver is its only client; still, every body has a bound and every request a deadline,
 * and whatever it is sent, it answers (an unreadable review is a 400, never a crash).
 */
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { V1Pod } from '@kubernetes/client-node';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../../dataplane/log/logger';
import { closeServer, listenOn } from '../../dataplane/net/listen';
import { ANNOTATION_CLUSTER, injectAgent, type InjectionContext, type InjectionResult } from './sidecar-injection';

export const MUTATE_PODS_PATH = '/mutate-pods';
/** The apiserver refuses objects over 3 MiB; a review carries the object (and, for updates, the old one). */
const MAX_REVIEW_BYTES = 8 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;

interface AdmissionRequest {
  uid?: unknown;
  namespace?: unknown;
  operation?: unknown;
  kind?: { kind?: unknown };
  object?: unknown;
}

export interface AdmissionServerOptions extends Omit<InjectionContext, 'namespace'> {
  /** Why the PikoCluster cache cannot be trusted yet (still listing); undefined once it can. */
  notReady?: () => string | undefined;
  logger: Logger;
  metricsRegistry: Registry;
}

export type AdmissionOutcome = 'injected' | 'unchanged' | 'skipped' | 'denied' | 'invalid';

export class AdmissionServer {
  private readonly server: https.Server;
  private readonly admissions: Counter<'result'>;
  private readonly duration: Histogram;

  constructor(private readonly o: AdmissionServerOptions) {
    // No certificate yet: a handshake before setCertificate() fails, which the apiserver reports as a webhook error.
    this.server = https.createServer(
      { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, minVersion: 'TLSv1.2' },
      (req, res) => this.handle(req, res),
    );
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('tlsClientError', () => undefined);
    this.admissions = new Counter({
      name: 'piko_operator_admission_total',
      help: 'Pods seen by the sidecar injector, by result: injected, unchanged (already injected), skipped (not annotated), denied, invalid (an unreadable review).',
      labelNames: ['result'],
      registers: [o.metricsRegistry],
    });
    this.duration = new Histogram({
      name: 'piko_operator_admission_duration_seconds',
      help: 'Time from a review arriving to its answer being written.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [o.metricsRegistry],
    });
  }

  /** Serves with this certificate from the next handshake on. */
  setCertificate(pair: { cert: string; key: string }): void {
    this.server.setSecureContext({ cert: pair.cert, key: pair.key } satisfies SecureContextOptions);
  }

  start(bindAddr: string, field: string): Promise<AddressInfo> {
    return listenOn(this.server, bindAddr, field);
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const path = (req.url ?? '').split('?')[0];
    if (path !== MUTATE_PODS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REVIEW_BYTES) {
        this.admissions.inc({ result: 'invalid' });
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end(`review over ${MAX_REVIEW_BYTES} bytes\n`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const answer = this.review(Buffer.concat(chunks));
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      this.duration.observe((performance.now() - started) / 1000);
    });
    req.on('error', () => undefined);
  }

  private review(body: Buffer): { status: number; body: unknown } {
    let review: { apiVersion?: unknown; request?: AdmissionRequest };
    try {
      review = JSON.parse(body.toString('utf8')) as typeof review;
    } catch {
      return this.invalid('body is not JSON');
    }
    const request = review?.request;
    if (typeof request !== 'object' || request === null || typeof request.uid !== 'string') return this.invalid('no request.uid');
    const pod = request.object;
    if (request.kind?.kind !== 'Pod' || typeof pod !== 'object' || pod === null) return this.invalid('request.object is not a Pod');
    const namespace = typeof request.namespace === 'string' ? request.namespace : '';

    let result: InjectionResult;
    const starting = this.o.notReady?.();
    try {
      // An empty cache would refuse every pod as naming an unknown cluster; say what is true instead.
      result =
        starting !== undefined && (pod as V1Pod).metadata?.annotations?.[ANNOTATION_CLUSTER] !== undefined
          ? { kind: 'deny', message: `piko-operator is starting (${starting}); retry` }
          : injectAgent(pod as V1Pod, { ...this.o, namespace });
    } catch (err) {
      // A pod shape the injector did not expect: refuse it rather than admit it without its tunnel.
      this.o.logger.error('sidecar injection failed', { namespace, error: err instanceof Error ? err.message : String(err) });
      result = { kind: 'deny', message: 'piko sidecar injection failed; see the operator log' };
    }
    const response: Record<string, unknown> = { uid: request.uid, allowed: result.kind !== 'deny' };
    const name = (pod as V1Pod).metadata?.name ?? (pod as V1Pod).metadata?.generateName ?? '';
    switch (result.kind) {
      case 'patch':
        response['patchType'] = 'JSONPatch';
        response['patch'] = Buffer.from(JSON.stringify(result.patch)).toString('base64');
        this.admissions.inc({ result: 'injected' });
        this.o.logger.info('injected agent', { namespace, pod: name, cluster: result.cluster, endpoints: result.endpoints });
        break;
      case 'deny':
        response['status'] = { code: 403, reason: 'Forbidden', message: result.message };
        this.admissions.inc({ result: 'denied' });
        this.o.logger.info('refused pod', { namespace, pod: name, reason: result.message });
        break;
      case 'unchanged':
        this.admissions.inc({ result: 'unchanged' });
        break;
      case 'skip':
        this.admissions.inc({ result: 'skipped' });
        break;
    }
    return { status: 200, body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response } };
  }

  private invalid(message: string): { status: number; body: unknown } {
    this.admissions.inc({ result: 'invalid' });
    return { status: 400, body: { error: message } };
  }
}
