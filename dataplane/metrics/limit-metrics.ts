import { Counter, type Registry } from 'prom-client';

/** Each limit by the configuration key that sets it, so the metric names the knob to turn. */
export const LIMITS = [
  'proxy.max_connections',
  'proxy.http.max_header_bytes',
  'proxy.tcp.max_message_bytes',
  'upstream.max_connections',
  'upstream.max_message_bytes',
  'upstream.session.max_streams',
  'upstream.session.max_buffered_bytes',
  'upstream.session.max_pending_control_frames',
  'admin.max_connections',
] as const;

export type LimitName = (typeof LIMITS)[number];

/** Reports that a limit refused a connection, message, stream or session. */
export type LimitTripped = (limit: LimitName) => void;

/** `piko_limits_tripped_total{limit}`: one series per limit, at 0 from the start so alerts can rate() it. */
export function createLimitMetrics(registry: Registry): LimitTripped {
  const counter = new Counter({
    name: 'piko_limits_tripped_total',
    help: 'Times a configured limit refused a connection, message, stream or upstream session, by its configuration key',
    labelNames: ['limit'],
    registers: [registry],
  });
  for (const limit of LIMITS) counter.labels(limit).inc(0);
  return (limit) => counter.labels(limit).inc();
}
