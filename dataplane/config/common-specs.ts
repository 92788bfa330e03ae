/**
 * Spec blocks several binaries share: `log`, `access_log` and `auth`, with
 * Piko's keys and defaults.
 */
import { validateAuthConfig, type AuthConfig } from '../auth/auth-config';
import type { AccessLogConfig } from '../log/access-log';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../log/logger';
import { ConfigError } from './errors';
import { bool, duration, group, str, strList, type GroupSpec } from './schema';

export interface LogConfig {
  level: LogLevel;
  /** Subsystems logged at every level whatever `level` says. */
  subsystems: string[];
  format: LogFormat;
}

export const LOG_SPEC: GroupSpec = group({
  level: str('info', 'Minimum log level: debug, info, warn or error.', { choices: LOG_LEVELS, arg: '<level>' }),
  subsystems: strList("Subsystems to log at every level, such as 'proxy' or 'upstream' (comma-separated, repeatable)."),
  format: str(
    'auto',
    'Log format: console (coloured, aligned, one line per event) or json; auto is console when stderr is a terminal and json otherwise.',
    {
      choices: LOG_FORMATS,
      arg: '<format>',
    },
  ),
});

/** `what` names the logged traffic in help text. */
export function accessLogSpec(what: string): GroupSpec {
  const headers = (direction: string): GroupSpec =>
    group({
      allow_list: strList(`The only ${direction} headers to log (cannot be combined with the block list).`),
      block_list: strList(`${direction[0]!.toUpperCase()}${direction.slice(1)} headers to leave out of the log.`),
    });
  return group({
    level: str('info', `Level of access log records for ${what} (5xx responses are at least warn).`, {
      choices: LOG_LEVELS,
      arg: '<level>',
    }),
    disable: bool(false, `Turn off the access log for ${what}.`),
    request_headers: headers('request'),
    response_headers: headers('response'),
  });
}

export function validateAccessLog(cfg: AccessLogConfig, path: string): void {
  if (cfg.disable) return;
  for (const [key, lists] of [
    ['request_headers', cfg.requestHeaders],
    ['response_headers', cfg.responseHeaders],
  ] as const) {
    if (lists.allowList.length > 0 && lists.blockList.length > 0) {
      throw new ConfigError(`${path}.${key}: allow_list and block_list cannot both be set`, {
        path: `${path}.${key}`,
      });
    }
  }
}

/** Piko's auth block for one port (`--proxy.auth.*`, YAML `proxy.auth`). */
export function authSpec(port: string): GroupSpec {
  const key = { optional: true } as const;
  return group({
    hmac_secret_key: str('', `Secret key to verify HMAC-signed (HS256/384/512) JWTs on the ${port} port.`, key),
    rsa_public_key: str('', `PEM public key to verify RSA-signed (RS256/384/512) JWTs on the ${port} port.`, key),
    ecdsa_public_key: str('', `PEM public key to verify ECDSA-signed (ES256/384/512) JWTs on the ${port} port.`, key),
    audience: str('', `Required JWT 'aud' claim on the ${port} port; not checked when empty.`, key),
    issuer: str('', `Required JWT 'iss' claim on the ${port} port; not checked when empty.`, key),
    disable_disconnect_on_expiry: bool(
      false,
      `Keep ${port} connections open when their token expires (expiry is still checked on connect).`,
    ),
    jwks: group({
      endpoint: str('', `JWKS to verify ${port} JWTs: an http, https or file URL. Cannot be combined with the static keys.`, {
        optional: true,
        arg: '<url>',
      }),
      // Piko's defaults are 0, meaning "the library default"; the verifier
      // resolves 0 to its own defaults (1h and 10s).
      cache_ttl: duration(0, 'How long a fetched JWKS is used before it is fetched again (0 = 1h).'),
      timeout: duration(0, 'Timeout fetching the JWKS (0 = 10s).'),
    }),
  });
}

/**
 * Drops the `jwks` object when no endpoint is set (the typed config has it
 * only when used) and runs the verifier's own checks so a bad key fails at
 * start-up with the YAML path.
 */
export function finishAuth(auth: AuthConfig, path: string): void {
  if (auth.jwks !== undefined && !auth.jwks.endpoint) delete auth.jwks;
  try {
    validateAuthConfig(auth, path);
  } catch (err) {
    const field = (err as { field?: unknown }).field;
    throw new ConfigError((err as Error).message, {
      path: typeof field === 'string' ? field : path,
      cause: err,
    });
  }
}
