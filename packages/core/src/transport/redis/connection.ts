import { readFileSync } from 'node:fs';
import type { Redis, RedisOptions } from 'ioredis';
import { CeleriacError, ConfigError, ErrorCodes } from '../../errors.js';
import type { ParsedUrl } from '../../util/url.js';

/** Settings read from a `redis://` / `rediss://` URL. */
export interface RedisSettings {
  readonly options: RedisOptions;
  /** kombu's `global_keyprefix`: prepended to every key (and, here, to pub/sub channels). */
  readonly keyPrefix: string;
  readonly db: number;
  readonly redacted: string;
}

/**
 * `redis://[user:password@]host[:port][/db][?keyPrefix=...]`.
 * `rediss://` is TLS with certificate verification on, against the system CAs or `?ca=<file>`
 * (`?tlsInsecure=true` turns verification off, for tests only).
 * `redis+sentinel://[user:password@]sentinel-host:port/<master name>[/db][?sentinels=host:port,...]`
 * asks the sentinels for the current master (and follows a failover).
 */
export function redisSettings(url: ParsedUrl): RedisSettings {
  const u = url.url;
  const sentinel = url.scheme === 'redis+sentinel';
  const [first, second] = u.pathname.replace(/^\//, '').split('/');
  const dbText = (sentinel ? second : first) || '0';
  const db = Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new ConfigError(`${url.redacted}: the path must be a database number, got ${JSON.stringify(dbText)}`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  const keyPrefix = u.searchParams.get('keyPrefix') ?? u.searchParams.get('global_keyprefix') ?? '';
  if (sentinel && !first) {
    throw new ConfigError(`${url.redacted}: a sentinel URL names the master after the host: redis+sentinel://host:port/<master>`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  const ca = u.searchParams.get('ca');
  const timeoutText = u.searchParams.get('commandTimeout') ?? '2000';
  const commandTimeout = Number(timeoutText);
  if (!Number.isInteger(commandTimeout) || commandTimeout < 1) {
    throw new ConfigError(`${url.redacted}: commandTimeout must be a positive whole number of ms, got ${JSON.stringify(timeoutText)}`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  const endpoint = sentinel
    ? {
        sentinels: [`${u.hostname}:${u.port || 26379}`, ...(u.searchParams.get('sentinels')?.split(',').filter(Boolean) ?? [])].map((hp) => {
          const [host, port] = hp.split(':');
          return { host: host || '127.0.0.1', port: Number(port || 26379) };
        }),
        name: decodeURIComponent(first!),
      }
    : { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379 };
  const options: RedisOptions = {
    ...endpoint,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(url.scheme === 'rediss'
      ? { tls: { rejectUnauthorized: u.searchParams.get('tlsInsecure') !== 'true', ...(ca ? { ca: readFileSync(ca) } : {}) } }
      : {}),
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
  return { options, keyPrefix, db, redacted: url.redacted };
}

/** How often an idle subscriber connection proves it is alive. */
const SUBSCRIBER_PING_MS = 5000;

/** Raised when Redis cannot be reached or stops answering; names the URL without its password. */
export class RedisUnavailableError extends CeleriacError {
  constructor(redacted: string, cause: unknown) {
    super(ErrorCodes.BROKER_UNAVAILABLE, `Redis at ${redacted} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, {
      url: redacted,
    });
  }
}

/**
 * Open a connection and wait until it is ready, or fail with one clear error.
 * A `subscriber` connection queues while offline and has no command timeout
 * (it only (re)subscribes; ioredis re-subscribes after a reconnect); a `consumer`
 * one sends each command as it comes (its commands are batches already).
 */
export async function connectRedis(settings: RedisSettings, role: 'commands' | 'consumer' | 'subscriber' = 'commands'): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const { commandTimeout: _timeout, ...base } = settings.options;
  const options =
    role === 'subscriber' ? { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null } : role === 'consumer' ? { ...settings.options, enableAutoPipelining: false } : settings.options;
  const client = new Redis(options);
  if (role === 'subscriber') {
    // A subscriber waits for pushes and sends nothing: a PING now and then arms its socket timeout,
    // so a half-open partition is found (and the connection replaced, re-subscribed) within seconds.
    const ping = setInterval(() => void client.ping().catch(() => undefined), SUBSCRIBER_PING_MS);
    ping.unref();
    client.once('end', () => clearInterval(ping));
  }
  // ioredis reports connection trouble as 'error' events while it retries: handled here, not crashing the
  // process; the last one says why a first connection failed (refused, certificate, WRONGPASS...).
  let reason: unknown;
  client.on('error', (err: unknown) => (reason = err));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new RedisUnavailableError(settings.redacted, reason ?? err);
  }
  return client;
}

/**
 * Why this Redis may lose queued work (eviction on, or no persistence at all): empty when it
 * cannot (or when CONFIG is disabled, as on managed Redis, so nothing can be told).
 */
export async function unsafeRedisSettings(client: Redis, redacted: string): Promise<string[]> {
  let policy: string[], aof: string[], save: string[];
  try {
    [policy, aof, save] = await Promise.all([
      client.config('GET', 'maxmemory-policy') as Promise<string[]>,
      client.config('GET', 'appendonly') as Promise<string[]>,
      client.config('GET', 'save') as Promise<string[]>,
    ]);
  } catch {
    return [];
  }
  const problems: string[] = [];
  if (policy[1] && policy[1] !== 'noeviction') problems.push(`Redis at ${redacted} has maxmemory-policy ${policy[1]}: it may evict queued tasks; use noeviction`);
  if (aof[1] !== 'yes' && !save[1]) problems.push(`Redis at ${redacted} has no persistence (appendonly no, save ''): a restart loses queued tasks`);
  return problems;
}

/** Warn once per process when Redis can lose queued work. Never rejects. */
const warned = new Set<string>();
export async function warnIfUnsafe(client: Redis, redacted: string): Promise<void> {
  if (warned.has(redacted)) return;
  warned.add(redacted);
  for (const problem of await unsafeRedisSettings(client, redacted).catch(() => [])) process.emitWarning(problem, 'CeleriacWarning');
}
