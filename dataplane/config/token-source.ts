/**
 * Where an agent or `piko forward` takes its token from: `connect.token`
 * (read once) or `connect.token_file` (re-read when it changes), never both.
 */
import { TokenFile } from '../client/token-file';
import type { Logger } from '../log/logger';
import { ConfigError } from './errors';
import { str, type LeafSpec } from './schema';

export const TOKEN_SPEC: LeafSpec = str('', 'Token (JWT) to authenticate with the Piko server.', { optional: true, arg: '<token>' });

export function tokenFileSpec(onChange: string): LeafSpec {
  return str('', `File holding the token; re-read when it changes${onChange}.`, { optional: true, arg: '<path>' });
}

export interface TokenSourceConfig {
  token?: string;
  tokenFile?: string;
}

export function checkTokenSource(connect: TokenSourceConfig): void {
  if (connect.token !== undefined && connect.tokenFile !== undefined) {
    throw new ConfigError('connect.token and connect.token_file are mutually exclusive', { path: 'connect.token_file' });
  }
}

/** Reads the token file, if one is configured; a bad file fails start-up with the key to fix. */
export function openTokenFile(connect: TokenSourceConfig, logger: Logger): TokenFile | undefined {
  if (connect.tokenFile === undefined) return undefined;
  try {
    return new TokenFile(connect.tokenFile, { logger });
  } catch (err) {
    throw new ConfigError(`connect.token_file: ${(err as Error).message}`, { path: 'connect.token_file', cause: err });
  }
}
