/**
 * One operator replica: the controller, and leader election deciding when
 * it reconciles. Every replica watches (so a standby is ready, and takes
 * over with warm caches); only the leader reconciles.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Logger } from '../dataplane/log/logger';
import { PikoClusterController, type ControllerOptions } from './controller/controller';
import { KubeEventRecorder } from './controller/event-recorder';
import type { KubeClient } from '../dataplane/kube/client';
import { LeaderElector, type LeaderElectionOptions } from '../dataplane/kube/leader-election';
import { createOperatorMetrics, type OperatorMetrics } from './runtime/metrics';

export interface LeaderElectionConfig {
  /** Namespace of the `piko-operator-leader` Lease. */
  namespace: string;
  /** This replica's Pod (downward API), owner of the Lease while it leads. */
  pod?: { name: string; uid: string };
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface OperatorOptions {
  client: KubeClient;
  /** Watch these namespaces only; empty or undefined: every namespace. */
  namespaces?: readonly string[];
  defaultImage: string;
  /** See ControllerOptions.tokenReviewerClusterRole. */
  tokenReviewerClusterRole?: string;
  /** See ControllerOptions.operatorNamespace. */
  operatorNamespace?: string;
  logger: Logger;
  metricsRegistry: Registry;
  /** false: reconcile at once, as the only replica. */
  leaderElection: LeaderElectionConfig | false;
  /** This replica in the Lease and in Events; the host (pod) name and a random suffix by default. */
  identity?: string;
  /** Tuning for tests. */
  controller?: Pick<
    ControllerOptions,
    'workers' | 'rateLimiter' | 'informerBackoff' | 'registryGcGraceMs' | 'resyncPeriodMs' | 'discoveryIntervalMs' | 'now' | 'onReconciled'
  >;
}

export class Operator {
  readonly identity: string;
  readonly controller: PikoClusterController;
  readonly metrics: OperatorMetrics;
  private readonly elector: LeaderElector | undefined;
  private readonly logger: Logger;
  private started = false;

  constructor(options: OperatorOptions) {
    this.identity = options.identity ?? `${hostname()}_${randomUUID()}`;
    this.logger = options.logger;
    this.metrics = createOperatorMetrics(options.metricsRegistry);
    this.metrics.leader.set(0);
    const controllerLogger = options.logger.child({ subsystem: 'controller' });
    this.controller = new PikoClusterController({
      client: options.client,
      ...(options.namespaces === undefined ? {} : { namespaces: options.namespaces }),
      defaultImage: options.defaultImage,
      ...(options.tokenReviewerClusterRole ? { tokenReviewerClusterRole: options.tokenReviewerClusterRole } : {}),
      ...(options.operatorNamespace ? { operatorNamespace: options.operatorNamespace } : {}),
      events: new KubeEventRecorder(options.client, {
        instance: this.identity,
        onError: (err) => controllerLogger.warn('could not record an event', { error: err instanceof Error ? err.message : String(err) }),
      }),
      logger: controllerLogger,
      metrics: this.metrics,
      ...options.controller,
    });
    const le = options.leaderElection;
    if (le !== false) {
      const electionOptions: LeaderElectionOptions = {
        client: options.client,
        namespace: le.namespace,
        identity: this.identity,
        owner: le.pod,
        logger: options.logger.child({ subsystem: 'leader-election' }),
        onStartedLeading: () => {
          this.metrics.leader.set(1);
          this.controller.startWorkers();
        },
        onStoppedLeading: () => {
          this.metrics.leader.set(0);
          // Another replica may lead already: not one more write from us.
          void this.controller.stopWorkers({ drain: false });
        },
        ...(le.leaseDurationMs === undefined ? {} : { leaseDurationMs: le.leaseDurationMs }),
        ...(le.renewDeadlineMs === undefined ? {} : { renewDeadlineMs: le.renewDeadlineMs }),
        ...(le.retryPeriodMs === undefined ? {} : { retryPeriodMs: le.retryPeriodMs }),
      };
      this.elector = new LeaderElector(electionOptions);
    }
  }

  /** Starts watching, and campaigning (or reconciling, without leader election). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.controller.startInformers();
    if (this.elector === undefined) {
      this.metrics.leader.set(1);
      this.controller.startWorkers();
    } else {
      this.elector.start();
    }
  }

  /** Resolves once every informer has completed its first list. */
  get synced(): Promise<void> {
    return this.controller.synced;
  }

  /** Why /readyz fails, or undefined. A standby is ready: it only waits for its turn. */
  notReady(): string | undefined {
    return this.controller.notReady();
  }

  /** Whether this replica reconciles now. */
  get isLeader(): boolean {
    return this.elector === undefined ? this.controller.isRunning : this.elector.isLeader;
  }

  /**
   * Stops in the order that hands over fastest and safest: finish the
   * reconciles under way while still leading, then release the Lease (a
   * standby takes over within a retry period), then stop watching.
   * `releaseLease: false` stands for a crash: reconciles are cut off and
   * the Lease is left to expire.
   */
  async stop(options: { releaseLease?: boolean } = {}): Promise<void> {
    const graceful = options.releaseLease !== false;
    await this.controller.stopWorkers({ drain: graceful });
    await this.elector?.stop({ release: graceful });
    this.metrics.leader.set(0);
    await this.controller.stopInformers();
    this.logger.info('operator stopped', { identity: this.identity });
  }
}
