import { Agent } from '../../../dataplane/agent/agent';
import { loadAgentConfig, type AgentConfig, type CliListener } from '../../../dataplane/config/agent-config';
import type { LeafValue } from '../../../dataplane/config/schema';
import type { Logger } from '../../../dataplane/log/logger';
export { capturingLogger } from '../../helpers/capturing-logger';

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
