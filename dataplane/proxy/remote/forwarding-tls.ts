/**
 * How a node dials other nodes' proxy ports over TLS (proxy.tls.client): the settings in use,
 * replaced when their files are renewed, and the name each peer must prove. Nodes dial each
 * other by the address in the registry, usually an IP, which a certificate seldom names; a
 * `server_name` of `{node}.piko-nodes.ns.svc` makes each peer prove the name of the node the
 * registry says it is, not merely that some certificate of the CA is behind the address.
 */
import type tls from 'node:tls';
import type { ClientTlsConfig } from '../../config/tls-config';
import { clientTlsOptions } from '../../net/tls';

/** Stands for the peer's node ID in `server_name`. */
export const NODE_PLACEHOLDER = '{node}';

export class ForwardingTls {
  private base: tls.ConnectionOptions;
  private gen = 0;

  constructor(
    private readonly cfg: ClientTlsConfig,
    private readonly field = 'proxy.tls.client',
  ) {
    this.base = clientTlsOptions(cfg, field);
  }

  /** Bumped at each reload: connections made with older settings are not reused. */
  get generation(): number {
    return this.gen;
  }

  /** The files behind the settings, for a TlsReloader. */
  get files(): (string | undefined)[] {
    return [this.cfg.cert, this.cfg.key, this.cfg.rootCas];
  }

  /** Reads the files again; throws a TlsConfigError when they do not make a whole. */
  load(): tls.ConnectionOptions {
    return clientTlsOptions(this.cfg, this.field);
  }

  apply(options: tls.ConnectionOptions): void {
    this.base = options;
    this.gen++;
  }

  /** Dial options toward one node. */
  forNode(nodeId: string): tls.ConnectionOptions {
    const name = this.base.servername;
    if (name === undefined || !name.includes(NODE_PLACEHOLDER)) return this.base;
    return { ...this.base, servername: name.split(NODE_PLACEHOLDER).join(nodeId) };
  }
}
