import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Builds the one metrics registry of a process. Piko exposes its own metrics
 * beside the Go runtime collector; the Node equivalent is prom-client's
 * default metrics (event loop, heap, GC, process). They are bound to this
 * registry, never the global one, so two nodes in one process (tests, the
 * bench) keep separate counters.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
