/**
 * The Redis URL, read once: `redisSettings` is the pure parser of `redis://`, `rediss://` and
 * `redis+sentinel://` URLs (no I/O, no client library loaded), used by `createApp` to refuse a bad
 * URL at start and by the transport, result backend and beat store to connect.
 */
import type { RedisOptions } from 'ioredis';
import { ConfigError, ErrorCodes } from '../../errors.js';
import { UrlOptions, type ParsedUrl } from '../../util/url.js';

/** Settings read from a `redis://` / `rediss://` / `redis+sentinel://` URL. */
export interface RedisSettings {
  /** ioredis options (the TLS CA, named by `?ca=`, is read from its file when connecting). */
  readonly options: RedisOptions;
  /** `?ca=`: file of the CA certificates a `rediss://` server is checked against. */
  readonly caFile?: string;
  /** kombu's `global_keyprefix`: prepended to every key (and, here, to pub/sub channels). */
  readonly keyPrefix: string;
  readonly db: number;
  readonly redacted: string;
}

/** Query options each Redis scheme accepts. */
export const REDIS_URL_OPTIONS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  redis: ['keyPrefix', 'global_keyprefix', 'commandTimeout'],
  rediss: ['keyPrefix', 'global_keyprefix', 'commandTimeout', 'ca', 'tlsInsecure'],
  'redis+sentinel': ['keyPrefix', 'global_keyprefix', 'commandTimeout', 'sentinels'],
});

/**
 * `redis://[user:password@]host[:port][/db][?keyPrefix=...&commandTimeout=2000]`.
 * `rediss://` is TLS with certificate verification on, against the system CAs or `?ca=<file>`
 * (`?tlsInsecure=true` turns verification off, for tests only).
 * `redis+sentinel://[user:password@]sentinel-host:port/<master name>[/db][?sentinels=host:port,...]`
 * asks the sentinels for the current master (and follows a failover).
 */
export function redisSettings(url: ParsedUrl): RedisSettings {
  const u = url.url;
  const sentinel = url.scheme === 'redis+sentinel';
  const query = new UrlOptions(url, REDIS_URL_OPTIONS[url.scheme] ?? REDIS_URL_OPTIONS.redis!);
  const [first, second] = u.pathname.replace(/^\//, '').split('/');
  const dbText = (sentinel ? second : first) || '0';
  const db = Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new ConfigError(`${url.redacted}: the path must be a database number, got ${JSON.stringify(dbText)}`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  const keyPrefix = query.string('keyPrefix') ?? query.string('global_keyprefix') ?? '';
  if (sentinel && !first) {
    throw new ConfigError(`${url.redacted}: a sentinel URL names the master after the host: redis+sentinel://host:port/<master>`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  const commandTimeout = query.int('commandTimeout', 2000, { min: 1, unit: 'ms' });
  const tls = url.scheme === 'rediss';
  const caFile = tls ? query.string('ca') : undefined;
  const tlsInsecure = tls && query.bool('tlsInsecure');
  const endpoint = sentinel ? { sentinels: sentinelsOf(url, query), name: decodeURIComponent(first!) } : { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379 };
  const options: RedisOptions = {
    ...endpoint,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(tls ? { tls: { rejectUnauthorized: !tlsInsecure } } : {}),
    keyPrefix,
    lazyConnect: true,
    // Fail fast while disconnected instead of queueing commands forever; reconnect in the background.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
    connectTimeout: 5000,
    // Commands issued in the same tick share one write: acks, fetches and publishes from many tasks batch themselves.
    enableAutoPipelining: true,
    // A stalled Redis (CLIENT PAUSE, SIGSTOP) fails each command after this long instead of hanging it.
    commandTimeout,
    // A socket that answers nothing for as long (a half-open partition: no RST ever comes) is
    // destroyed and replaced, rather than kept with its commands timing out one by one.
    socketTimeout: commandTimeout,
  };
  return { options, ...(caFile ? { caFile } : {}), keyPrefix, db, redacted: url.redacted };
}

/** The URL's host plus `?sentinels=host:port,...`, each port checked. */
function sentinelsOf(url: ParsedUrl, query: UrlOptions): { host: string; port: number }[] {
  const listed = query.string('sentinels')?.split(',').filter(Boolean) ?? [];
  return [`${url.url.hostname}:${url.url.port || 26379}`, ...listed].map((hp) => {
    const [host, port] = hp.split(':');
    const n = Number(port || 26379);
    if (!Number.isInteger(n) || n < 1 || n > 65535) query.invalid('sentinels', query.string('sentinels') ?? '', 'a list of host:port');
    return { host: host || '127.0.0.1', port: n };
  });
}
