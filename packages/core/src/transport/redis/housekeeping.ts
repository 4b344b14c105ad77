/**
 * Redis housekeeping that any celeriac process does while it consumes (or after it delays a
 * message): promote due delayed messages to their queues, and — kombu's restore_visible — put
 * back unacknowledged messages whose owner stopped renewing them.
 */
import type { Redis } from 'ioredis';
import { newId } from '../../util/ids.js';
import { KEYS, queueKey, readUnackedEntry } from './keys.js';

/** Longest hold of kombu's `unacked_mutex` by a restore pass. */
const RESTORE_MUTEX_MS = 5000;

export interface HousekeepingHost {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly visibilityTimeout: number;
  /** The prefixed wake-up channel. */
  readonly wakeChannel: string;
  /** Renew every lease this process holds (before a restore pass looks for abandoned ones). */
  renewOwn(): Promise<void>;
}

export class RedisHousekeeping {
  private restoreTimer: NodeJS.Timeout | undefined;
  private promoteTimer: NodeJS.Timeout | undefined;
  private promoting = false;
  private closed = false;

  constructor(private readonly host: HousekeepingHost) {}

  /** Promote due delayed messages and restore abandoned ones, from now until closed. */
  start(): void {
    if (this.restoreTimer || this.closed) return;
    const restoreEvery = Math.max(200, Math.min(5000, Math.floor(this.host.visibilityTimeout / 4)));
    this.restoreTimer = setInterval(() => void this.restoreVisible().catch(() => undefined), restoreEvery);
    this.startPromoting();
  }

  /** Any celeriac process promotes due messages, so a delayed task reaches even a fleet of Python workers. */
  startPromoting(): void {
    if (this.promoting || this.closed) return;
    this.promoting = true;
    void this.promote();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.restoreTimer);
    clearTimeout(this.promoteTimer);
  }

  /** Move due delayed messages to their queues, then sleep until the next one is due (at most 1 s). */
  private async promote(): Promise<void> {
    if (this.closed) return;
    let wait = 1000;
    try {
      const [, next] = (await this.host.redis.celeriacPromote(KEYS.delayed, Date.now(), 500, this.host.keyPrefix, this.host.wakeChannel)) as [number, number];
      if (next >= 0) wait = Math.max(5, Math.min(1000, next - Date.now()));
    } catch {
      // Redis away: try again shortly.
    }
    if (this.closed) return;
    this.promoteTimer = setTimeout(() => void this.promote(), wait);
  }

  /**
   * kombu's restore_visible: under `unacked_mutex`, put back every unacknowledged
   * message whose index entry is older than the visibility window (its owner died
   * or froze; live owners renew theirs), marked redelivered as kombu marks it.
   */
  async restoreVisible(): Promise<number> {
    const { redis, visibilityTimeout } = this.host;
    const token = newId();
    // Held briefly: a pass takes milliseconds (each RESTORE_ONE is atomic and fenced on its own), and a
    // holder cut off mid-pass (a partition, a kill) must not stop every restore for long — at 30 s it
    // kept messages whose fetch replies were lost in a partition waiting 30 s after it healed.
    const locked = await redis.set(KEYS.unackedMutex, token, 'PX', Math.min(RESTORE_MUTEX_MS, visibilityTimeout), 'NX');
    if (!locked) return 0;
    let restored = 0;
    try {
      // This process's own deliveries first: after an outage its renewals may be behind, and it must
      // never restore what it still runs.
      await this.host.renewOwn();
      const cutoff = (Date.now() - visibilityTimeout) / 1000;
      const tags = await redis.zrangebyscore(KEYS.unackedIndex, 0, cutoff, 'LIMIT', 0, 200);
      for (const tag of tags) {
        const entry = await redis.hget(KEYS.unacked, tag);
        if (!entry) {
          await redis.zrem(KEYS.unackedIndex, tag);
          continue;
        }
        const [key, text] = restoredEntry(entry);
        restored += (await redis.celeriacRestoreOne(KEYS.unacked, KEYS.unackedIndex, key, tag, cutoff, text)) as number;
      }
      if (restored) await redis.publish(this.host.wakeChannel, '');
    } finally {
      await redis.celeriacReleaseLock(KEYS.unackedMutex, token);
    }
    return restored;
  }
}

/** The list an `unacked` entry goes back to and its envelope text, marked redelivered as kombu marks it. */
function restoredEntry(entry: string): [key: string, text: string] {
  const [payload, , routingKey] = readUnackedEntry(entry);
  if (typeof payload !== 'object' || payload === null) return [routingKey, payload];
  const env = payload as { headers?: Record<string, unknown>; properties?: { delivery_info?: Record<string, unknown>; priority?: number } };
  if (env.headers) env.headers.redelivered = true;
  if (env.properties?.delivery_info) env.properties.delivery_info.redelivered = true;
  return [queueKey(routingKey, env.properties?.priority ?? 0), JSON.stringify(payload)];
}
