/**
 * The `piko` command tree. Flags come from the config specs, so every flag
 * has its YAML key, default and help text from one place. Commands only
 * build a config and hand it to the injected run function; nothing here
 * starts servers, so tests parse flags without spawning processes.
 */
import { Command, CommanderError, Option } from 'commander';
import {
  AGENT_SPEC,
  LISTENER_SPEC,
  loadAgentConfig,
  TCP_LISTENER_FLAG_PATHS,
  type AgentConfig,
  type ListenerProtocol,
} from '../config/agent-config';
import { ConfigError } from '../config/errors';
import { FORWARD_SPEC, loadForwardConfig, type ForwardConfig } from '../config/forward-config';
import { loadOperatorConfig, OPERATOR_SPEC, type OperatorConfig } from '../../operator/operator-config';
import { flagLeaves } from '../config/schema';
import { loadServerConfig, SERVER_SPEC, type ServerConfig } from '../config/server-config';
import { addConfigOptions, booleanFlags, configSource, FlagSet, normaliseBooleanArgs } from './options';
import { clusterNodesYaml, clusterNodeYaml, NODE_STATUSES, upstreamEndpointsYaml, type StatusClientOptions } from './status';

export interface CliDeps {
  runServer(config: ServerConfig): Promise<void>;
  runAgent(config: AgentConfig): Promise<void>;
  runForward(config: ForwardConfig): Promise<void>;
  /** `piko operator`; the command reports an error when not given. */
  runOperator?(config: OperatorConfig): Promise<void>;
  /** Substitutions for `--config.expand-env`; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Where help, version and status output go; process.stdout by default. */
  writeOut?: (text: string) => void;
  /** Where errors go; process.stderr by default. */
  writeErr?: (text: string) => void;
  /** For the status commands; global fetch by default. */
  fetch?: typeof fetch;
  version?: string;
}

export function createProgram(deps: CliDeps): Command {
  const writeOut = deps.writeOut ?? ((s: string) => void process.stdout.write(s));
  const writeErr = deps.writeErr ?? ((s: string) => void process.stderr.write(s));
  const env = deps.env ?? process.env;

  // Settings given before .command() are inherited by every subcommand.
  const program = new Command('piko')
    .exitOverride()
    .configureOutput({ writeOut, writeErr })
    .configureHelp({ showGlobalOptions: true })
    .helpCommand(false)
    .description(
      `Piko is a reverse proxy that exposes services which are not publicly routable
(tunnelling). Upstream services connect out to the Piko server and register
endpoints; the server routes proxied traffic for each endpoint over that
outbound connection.`,
    )
    .addHelpText(
      'after',
      `
Examples:
  # Start a server node.
  piko server

  # Register endpoint 'my-endpoint' and forward HTTP requests to localhost:3000.
  piko agent http my-endpoint 3000

  # Forward raw TCP to localhost:3000.
  piko agent tcp my-endpoint 3000

  # Listen on local port 3000 and forward connections to 'my-endpoint'.
  piko forward tcp 3000 my-endpoint

  # Run the Kubernetes operator (in a cluster, with its ServiceAccount).
  piko operator`,
    );
  program.version(deps.version ?? '0.0.0', '-v, --version', 'Print the version.');

  addServerCommand(program, deps, env, writeOut);
  addAgentCommand(program, deps, env);
  addForwardCommand(program, deps, env);
  addOperatorCommand(program, deps, env);
  // Without this the root hands a subcommand its options and its operands
  // separately, which defeats the positional server options below. Set
  // last, so subcommands do not inherit it: agent and forward flags are
  // accepted after the subcommand, as with cobra's persistent flags.
  program.enablePositionalOptions();
  return program;
}

function addServerCommand(program: Command, deps: CliDeps, env: NodeJS.ProcessEnv, writeOut: (text: string) => void): void {
  const server = program
    .command('server')
    .summary('start a server node')
    .description(
      `Starts a Piko server node. It routes requests and connections arriving on the
proxy port to upstream services connected on the upstream port.

Ports:
  proxy    (:8000) HTTP(S) requests and TCP forwards from clients
  upstream (:8001) connections from agents and SDK listeners
  admin    (:8002) /metrics, /health, /ready and the status API

Configure with flags or a YAML file ('--config.path'); keys in the file
override the same flags.`,
    )
    .addHelpText(
      'after',
      `
Examples:
  piko server
  piko server --config.path ./server.yaml --config.expand-env`,
    )
    // Server flags belong before `status`, so a status command never
    // silently accepts a server flag.
    .enablePositionalOptions();
  const flags = new FlagSet(flagLeaves(SERVER_SPEC)).addTo(server);
  addConfigOptions(server);
  // Actions load the config synchronously, so a config error is thrown by
  // parse() itself (see parse.ts), and only then hand over to the runner.
  server.action((_opts: unknown, cmd: Command) => {
    const config = loadServerConfig({ flags: flags.values(cmd), ...configSource(cmd), env });
    return deps.runServer(config);
  });
  addStatusCommand(server, deps, writeOut);
}

function addStatusCommand(server: Command, deps: CliDeps, writeOut: (text: string) => void): void {
  const status = server
    .command('status')
    .summary('inspect a server node')
    .description(
      `Queries a node's admin API and prints the answer as YAML: the upstream
endpoints connected to it and the cluster as it sees it.`,
    )
    .addOption(new Option('--server.url <url>', 'URL of the server admin port. (default "http://localhost:8002")'))
    .addOption(new Option('--server.token <token>', 'Bearer token for an admin port with auth enabled.'))
    .addOption(new Option('--forward <node-id>', 'Ask the node to forward the request to this node ID.'))
    // Inherited from `server`; status flags may follow the subcommands.
    .enablePositionalOptions(false);
  const clientOptions = (): StatusClientOptions => {
    const opts = status.opts<Record<string, string | undefined>>();
    return {
      url: opts['server.url'] ?? 'http://localhost:8002',
      ...(opts['server.token'] ? { token: opts['server.token'] } : {}),
      ...(opts.forward ? { forward: opts.forward } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    };
  };

  const upstream = status.command('upstream').summary('inspect connected upstreams');
  upstream
    .command('endpoints')
    .summary('number of upstream listeners per endpoint')
    .action(async () => {
      writeOut(await upstreamEndpointsYaml(clientOptions()));
    });

  const cluster = status.command('cluster').summary('inspect the cluster');
  cluster
    .command('nodes')
    .summary('the nodes this node knows of')
    .addOption(new Option('--status <status>', 'Only show nodes with this status.').choices(NODE_STATUSES))
    .action(async (opts: { status?: string }) => {
      writeOut(await clusterNodesYaml(clientOptions(), opts.status));
    });
  cluster
    .command('node')
    .summary("one node's state, including its endpoints")
    .argument('<id>', "node ID, or 'local' for the node answering")
    .action(async (id: string) => {
      writeOut(await clusterNodeYaml(clientOptions(), id));
    });
}

function addAgentCommand(program: Command, deps: CliDeps, env: NodeJS.ProcessEnv): void {
  const agent = program
    .command('agent')
    .summary('register endpoints and forward their traffic to your services')
    .description(
      `The agent registers endpoints with the Piko server over an outbound
connection and forwards the traffic Piko routes to them to your services, so
the services never expose a port. HTTP listeners log and time each request;
TCP listeners forward raw connections.

Configure with flags or a YAML file ('--config.path'); keys in the file
override the same flags.`,
    );
  const flags = new FlagSet(flagLeaves(AGENT_SPEC)).addTo(agent);
  addConfigOptions(agent);

  const run = (
    cmd: Command,
    listener?: { protocol: ListenerProtocol; endpointId: string; addr: string; flags: FlagSet },
  ): Promise<void> => {
    const config = loadAgentConfig({
      flags: flags.values(agent),
      ...configSource(agent),
      env,
      ...(listener === undefined
        ? {}
        : {
            listener: {
              protocol: listener.protocol,
              endpointId: listener.endpointId,
              addr: listener.addr,
              flags: listener.flags.values(cmd),
            },
          }),
    });
    if (config.listeners.length === 0) throw new ConfigError('no listeners configured', { path: 'listeners' });
    return deps.runAgent(config);
  };

  const listenerFlags = flagLeaves(LISTENER_SPEC);
  const http = agent
    .command('http')
    .summary('register an HTTP listener')
    .description(
      `Registers <endpoint> and forwards the HTTP requests it receives to <addr>: a
port, host:port or http(s) URL. Listeners in the config file are replaced.`,
    )
    .argument('<endpoint>', 'endpoint ID to register')
    .argument('<addr>', 'local service: port, host:port or URL')
    .addHelpText(
      'after',
      `
Examples:
  piko agent http my-endpoint 3000
  piko agent http my-endpoint 10.26.104.56:3000
  piko agent http my-endpoint https://10.26.104.56:3000`,
    );
  const httpFlags = new FlagSet(listenerFlags).addTo(http);
  http.action((endpointId: string, addr: string, _opts: unknown, cmd: Command) =>
    run(cmd, { protocol: 'http', endpointId, addr, flags: httpFlags }),
  );

  const tcp = agent
    .command('tcp')
    .summary('register a TCP listener')
    .description(
      `Registers <endpoint> and forwards the connections it receives to <addr>: a
port or host:port. Listeners in the config file are replaced.`,
    )
    .argument('<endpoint>', 'endpoint ID to register')
    .argument('<addr>', 'local service: port or host:port')
    .addHelpText(
      'after',
      `
Examples:
  piko agent tcp my-endpoint 3000
  piko agent tcp my-endpoint 10.26.104.56:3000`,
    );
  const tcpFlags = new FlagSet(listenerFlags.filter((f) => TCP_LISTENER_FLAG_PATHS.includes(f.path))).addTo(tcp);
  tcp.action((endpointId: string, addr: string, _opts: unknown, cmd: Command) =>
    run(cmd, { protocol: 'tcp', endpointId, addr, flags: tcpFlags }),
  );

  agent
    .command('start')
    .summary('register the listeners of the config file')
    .description('Registers every listener in the config file; fails when there are none.')
    .addHelpText(
      'after',
      `
Examples:
  piko agent start --config.path ./agent.yaml`,
    )
    .action((_opts: unknown, cmd: Command) => run(cmd));
}

function addForwardCommand(program: Command, deps: CliDeps, env: NodeJS.ProcessEnv): void {
  const forward = program
    .command('forward')
    .summary('forward local ports to endpoints')
    .description(
      `Listens on local ports and forwards each connection to an endpoint through
the Piko server's proxy port.

Configure with flags or a YAML file ('--config.path'); keys in the file
override the same flags.`,
    );
  const flags = new FlagSet(flagLeaves(FORWARD_SPEC)).addTo(forward);
  addConfigOptions(forward);

  const run = (port?: { addr: string; endpointId: string }): Promise<void> => {
    const config = loadForwardConfig({
      flags: flags.values(forward),
      ...configSource(forward),
      env,
      ...(port === undefined ? {} : { port }),
    });
    if (config.ports.length === 0) throw new ConfigError('no ports configured', { path: 'ports' });
    return deps.runForward(config);
  };

  forward
    .command('tcp')
    .summary('forward a local TCP port')
    .description(
      `Listens on <addr> (a port, meaning localhost, or host:port) and forwards each
connection to <endpoint>. Ports in the config file are replaced.`,
    )
    .argument('<addr>', 'local port or host:port to listen on')
    .argument('<endpoint>', 'endpoint ID to forward to')
    .addHelpText(
      'after',
      `
Examples:
  piko forward tcp 3000 my-endpoint
  piko forward tcp 0.0.0.0:3000 my-endpoint`,
    )
    .action((addr: string, endpointId: string) => run({ addr, endpointId }));

  forward
    .command('start')
    .summary('forward the ports of the config file')
    .description('Forwards every port in the config file; fails when there are none.')
    .addHelpText(
      'after',
      `
Examples:
  piko forward start --config.path ./forward.yaml`,
    )
    .action(() => run());
}

function addOperatorCommand(program: Command, deps: CliDeps, env: NodeJS.ProcessEnv): void {
  const operator = program
    .command('operator')
    .summary('run the Kubernetes operator')
    .description(
      `Runs the operator that turns PikoCluster resources into running Piko
clusters: a StatefulSet of server pods, their Services, configuration, RBAC
and PodDisruptionBudget, with status written back to each PikoCluster.
Replicas elect a leader through a Lease; only the leader reconciles.

Configure with flags or a YAML file ('--config.path'); keys in the file
override the same flags.`,
    )
    .addHelpText(
      'after',
      `
Examples:
  piko operator
  piko operator --namespace piko --leader-elect=false`,
    );
  const flags = new FlagSet(flagLeaves(OPERATOR_SPEC)).addTo(operator);
  addConfigOptions(operator);
  operator.action((_opts: unknown, cmd: Command) => {
    const config = loadOperatorConfig({ flags: flags.values(cmd), ...configSource(cmd), env, version: deps.version ?? '0.0.0' });
    if (deps.runOperator === undefined) throw new ConfigError('the operator is not available in this build');
    return deps.runOperator(config);
  });
}

/**
 * Runs the CLI and resolves to the exit code. Usage and config errors print
 * `error: <message>` to stderr (no stack trace) and give 1.
 */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const writeErr = deps.writeErr ?? ((s: string) => void process.stderr.write(s));
  const program = createProgram(deps);
  try {
    await program.parseAsync(normaliseBooleanArgs(argv, booleanFlags(program)), { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already printed its own message (or the help).
    if (err instanceof CommanderError) return err.exitCode;
    writeErr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** The help text of a command, e.g. `['agent', 'http']`. */
export function commandHelp(path: readonly string[], deps?: Partial<CliDeps>): string {
  let cmd = createProgram({ ...NOOP_DEPS, ...deps });
  for (const name of path) {
    const next = cmd.commands.find((c) => c.name() === name);
    if (next === undefined) throw new Error(`no command ${path.join(' ')}`);
    cmd = next;
  }
  return cmd.helpInformation();
}

const NOOP_DEPS: CliDeps = {
  runServer: async () => undefined,
  runAgent: async () => undefined,
  runForward: async () => undefined,
  runOperator: async () => undefined,
  writeOut: () => undefined,
  writeErr: () => undefined,
};
