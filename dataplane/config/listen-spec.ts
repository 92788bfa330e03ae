/**
 * The short form of a listener, `<endpoint>=<addr>[/http|/tcp]`: `piko agent start --listen` and
 * the `piko.dev/listeners` pod annotation (where addr must be a port) share it, so a listener
 * reads the same in a shell and in a manifest.
 */
import { validateEndpointId } from '../protocol/endpoint-id';
import type { ListenerProtocol } from './agent-config';

export interface ListenSpec {
  endpointId: string;
  /** As written: a port, or (portOnly false) host:port. */
  addr: string;
  protocol: ListenerProtocol;
}

const PORT = /^[0-9]{1,5}$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

/** One listener, or the reason it cannot be one. */
export function parseListenSpec(text: string, options: { portOnly?: boolean } = {}): ListenSpec | { problem: string } {
  const eq = text.indexOf('=');
  if (eq < 0) return { problem: `${JSON.stringify(text)} is not <endpoint>=<port>[/http|/tcp]` };
  const endpointId = text.slice(0, eq).trim();
  let rest = text.slice(eq + 1).trim();
  let protocol: ListenerProtocol = 'http';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1);
    if (proto !== 'http' && proto !== 'tcp')
      return { problem: `${JSON.stringify(text)}: protocol ${JSON.stringify(proto)} is not http or tcp` };
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  const idProblem = validateEndpointId(endpointId);
  if (idProblem !== undefined) return { problem: `${JSON.stringify(text)}: ${idProblem}` };
  const port = PORT.test(rest) ? Number(rest) : options.portOnly ? NaN : Number(HOST_PORT.exec(rest)?.[2] ?? NaN);
  if (Number.isNaN(port)) {
    return { problem: `${JSON.stringify(text)}: ${JSON.stringify(rest)} is not a port${options.portOnly ? '' : ' or host:port'}` };
  }
  if (port < 1 || port > 65535) return { problem: `${JSON.stringify(text)}: port ${port} is out of range (1-65535)` };
  return { endpointId, addr: rest, protocol };
}

/** A comma-separated list, each endpoint once; the first problem found. */
export function parseListenSpecs(items: readonly string[], options: { portOnly?: boolean } = {}): ListenSpec[] | { problem: string } {
  const out: ListenSpec[] = [];
  for (const item of items.flatMap((i) => i.split(',')).map((i) => i.trim())) {
    if (item === '') continue;
    const spec = parseListenSpec(item, options);
    if ('problem' in spec) return spec;
    if (out.some((s) => s.endpointId === spec.endpointId))
      return { problem: `endpoint ${JSON.stringify(spec.endpointId)} is listed twice` };
    out.push(spec);
  }
  return out;
}
