/**
 * Opening Redis connections (commands, consumer and subscriber roles), the one error for a Redis
 * that cannot be reached, and the check for a Redis set up to lose work. Shared by the Redis
 * transport, the Redis result backend and the beat store.
 */
import { readFileSync } from 'node:fs';
import type { Redis, RedisOptions } from 'ioredis';
import { BrokerUnavailableError, ConfigError, ErrorCodes } from '../../errors.js';
import type { RedisSettings } from './settings.js';

/** How often an idle subscriber connection proves it is alive. */
const SUBSCRIBER_PING_MS = 5000;

/** Redis cannot be reached or stopped answering: a {@link BrokerUnavailableError} naming the URL without its password. */
export function redisUnavailable(redacted: string, cause: unknown): BrokerUnavailableError {
  return new BrokerUnavailableError(`Redis at ${redacted} is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { url: redacted }, { cause });
}

/** The ioredis options with the `?ca=` file read (a file that cannot be read is a configuration error). */
function clientOptions(settings: RedisSettings): RedisOptions {
  if (!settings.caFile || !settings.options.tls) return settings.options;
  let ca: Buffer;
  try {
    ca = readFileSync(settings.caFile);
  } catch (err) {
    throw new ConfigError(`${settings.redacted}: cannot read the CA file ${JSON.stringify(settings.caFile)}: ${(err as Error).message}`, { url: settings.redacted }, ErrorCodes.URL_INVALID, { cause: err });
  }
  return { ...settings.options, tls: { ...settings.options.tls, ca } };
}

/**
 * Open a connection and wait until it is ready, or fail with one clear error.
 * A `subscriber` connection queues while offline and has no command timeout
 * (it only (re)subscribes; ioredis re-subscribes after a reconnect); a `consumer`
 * one sends each command as it comes (its commands are batches already).
 */
export async function connectRedis(settings: RedisSettings, role: 'commands' | 'consumer' | 'subscriber' = 'commands'): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const all = clientOptions(settings);
  const { commandTimeout: _timeout, ...base } = all;
  const options = role === 'subscriber' ? { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null } : role === 'consumer' ? { ...all, enableAutoPipelining: false } : all;
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
    throw redisUnavailable(settings.redacted, reason ?? err);
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
