/** The operator's metrics, registered on the Registry the entry point hands in (never the global one). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** How a reconcile ended: the `result` label of piko_operator_reconcile_total. */
export type ReconcileOutcome = 'success' | 'requeue' | 'conflict' | 'error';

export interface OperatorMetrics {
  reconcileTotal: Counter<'result'>;
  reconcileDuration: Histogram;
  reconcileErrors: Counter;
  queueDepth: Gauge;
  leader: Gauge;
  informerHealthy: Gauge<'resource'>;
}

export function createOperatorMetrics(registry: Registry): OperatorMetrics {
  return {
    reconcileTotal: new Counter({
      name: 'piko_operator_reconcile_total',
      help: 'Reconciles of PikoClusters by result: success, requeue (a spec problem, retried later), conflict (409, retried), error.',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'piko_operator_reconcile_duration_seconds',
      help: 'Time one reconcile of a PikoCluster took.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'piko_operator_reconcile_errors_total',
      help: 'Reconciles that failed with an error other than a conflict, and were retried with backoff.',
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'piko_operator_workqueue_depth',
      help: 'PikoCluster keys waiting for a worker.',
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'piko_operator_leader',
      help: '1 while this replica is the leader (or leader election is off), else 0.',
      registers: [registry],
    }),
    informerHealthy: new Gauge({
      name: 'piko_operator_informer_healthy',
      help: '1 while the watch of a resource delivers, 0 while it is restarting after an error.',
      labelNames: ['resource'],
      registers: [registry],
    }),
  };
}
