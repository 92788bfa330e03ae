import { EventEmitter, once } from 'node:events';
import { PassThrough } from 'node:stream';
import { Agent } from '../../../dataplane/agent/agent';
import { loadAgentConfig, type AgentConfig, type CliListener } from '../../../dataplane/config/agent-config';
import type { LeafValue } from '../../../dataplane/config/schema';
import { createLogger, type Logger } from '../../../dataplane/log/logger';

type LogRecord = Record<string, unknown>;

/** A logger whose JSON records the test can read back, or wait for. */
export function capturingLogger(): {
  logger: Logger;
  records: () => LogRecord[];
  waitFor: (match: (r: LogRecord) => boolean, timeoutMs?: number) => Promise<LogRecord>;
} {
  const stream = new PassThrough();
  const records: LogRecord[] = [];
  const added = new EventEmitter();
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      records.push(JSON.parse(line) as LogRecord);
      added.emit('record');
    }
  });
  const waitFor = async (match: (r: LogRecord) => boolean, timeoutMs = 10_000): Promise<LogRecord> => {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = records.find(match);
      if (found) return found;
      await once(added, 'record', { signal });
    }
  };
  return { logger: createLogger({ level: 'debug', stream }), records: () => [...records], waitFor };
}

/** An agent config as `piko agent http|tcp <endpoint> <addr> --flags` would build it. */
export function agentConfig(upstreamUrl: string, listener: CliListener, flags: Record<string, LeafValue> = {}): AgentConfig {
  return loadAgentConfig({ flags: { 'connect.url': upstreamUrl, 'connect.timeout': 5_000, ...flags }, listener });
}

const running = new Set<Agent>();

export async function startAgent(config: AgentConfig, logger: Logger): Promise<Agent> {
  const agent = new Agent(config, { logger });
  running.add(agent);
  await agent.start();
  return agent;
}

export async function stopAllAgents(): Promise<void> {
  const agents = [...running];
  running.clear();
  await Promise.all(agents.map((a) => a.shutdown(100)));
}
