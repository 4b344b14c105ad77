import type { Redis, Result } from 'ioredis';
import { TimeoutError } from '../../errors.js';
import { READY_STATES, type ResultMeta, type TaskState } from '../../protocol/schema.js';
import { connectRedis } from '../../drivers/redis/connection.js';
import { defineScripts } from '../../drivers/redis/scripts.js';
import type { RedisSettings } from '../../drivers/redis/settings.js';
import { CHORD_COMPLETE, CHORD_PART_RETURN, DEDUP_CLAIM, DEDUP_RELEASE, KEEP_FAILED, LEASE_ACQUIRE, RATE_RESERVE, STORE_RESULT, TAKE_FAILED } from './scripts.js';
import type { BackendCapabilities, ChordPart, FailedRetention, FailedTaskRecord, ResultBackend, WaitOptions } from '../backend.js';
import { abortReason } from '../../util/abort.js';

/** Celery's result key. */
export const metaKey = (taskId: string): string => `celery-task-meta-${taskId}`;
/** Celery's group / chord key prefix. */
const tasksetKey = (groupId: string): string => `celery-taskset-meta-${groupId}`;

/** A deduplicated send's key (owner: this backend; expires with the dedup window). */
const dedupKey = (key: string): string => `celeriac-dedup-${key}`;

/** The failed-task registry: ids by when they failed, and their records (owner: this backend; trimmed by keep-failed). */
const FAILED = 'celeriac.failed';
const FAILED_RECORDS = 'celeriac.failed.records';

/** Fleet switches that are on: field → value (owner: this backend; no expiry: an operator turns them off). */
const FLAGS = 'celeriac.flags';

/** A task's fleet-wide rate override, set by remote control (owner: this backend; no expiry, like the limit). */
const rateOverrideKey = (taskName: string): string => `celeriac-rate-limit-${taskName}`;

/** Revoked task ids, scored by when each revocation expires (owner: this backend; trimmed on write). */
const REVOKED = 'celeriac.revoked';

/** Send-time subscriptions nobody has waited on yet, at most (a bulk send must not subscribe to every task). */
const WATCH_MAX = 256;
/** How long a send-time subscription waits for a `wait` to join it. */
const WATCH_MS = 1000;

/** One subscribed result channel: its waiters, and (for a send-time watch) what it heard before any came. */
interface Channel {
  readonly taskId: string;
  readonly set: Set<(meta: ResultMeta) => void>;
  readonly subscribed: Promise<unknown>;
  watch?: NodeJS.Timeout | undefined;
  early?: ResultMeta;
}

/**
 * `redis://` result backend laid out as Celery's: `celery-task-meta-<id>` with an
 * expiry, PUBLISHed on a channel of the same name. `wait` subscribes first and
 * reads second, so a result stored in between is never missed.
 */
export class RedisBackend implements ResultBackend {
  readonly kind = 'redis';
  readonly capabilities: BackendCapabilities = Object.freeze({ push: true, durable: true, crossProcess: true, chords: true, revocations: true, savedGroups: true, sharedResults: true, deduplication: true, fleetLimits: true, fleetFlags: true, failedRegistry: true });
  /** Channel -> waiters and its SUBSCRIBE; one subscription per channel however many wait on it. */
  private readonly waiters = new Map<string, Channel>();
  /** Send-time watches not joined by a wait yet. */
  private watching = 0;

  private constructor(
    private readonly redis: Redis,
    private readonly sub: Redis,
    private readonly settings: RedisSettings,
  ) {
    defineScripts(redis, {
      celeriacStoreResult: [STORE_RESULT, 1],
      celeriacChordPartReturn: [CHORD_PART_RETURN, 5],
      celeriacChordComplete: [CHORD_COMPLETE, 5],
      celeriacDedupClaim: [DEDUP_CLAIM, 1],
      celeriacDedupRelease: [DEDUP_RELEASE, 1],
      celeriacRateReserve: [RATE_RESERVE, 2],
      celeriacLeaseAcquire: [LEASE_ACQUIRE, 1],
      celeriacKeepFailed: [KEEP_FAILED, 2],
      celeriacTakeFailed: [TAKE_FAILED, 2],
    });
    sub.on('message', (channel: string, text: string) => {
      const entry = this.waiters.get(channel);
      if (!entry) return;
      let meta: ResultMeta;
      try {
        meta = JSON.parse(text) as ResultMeta;
      } catch {
        return;
      }
      this.dispatch(entry, meta);
    });
    // After a reconnect ioredis subscribes again, but a result PUBLISHed while the connection was
    // down was heard by nobody: every waiter re-reads its record once subscribed again.
    sub.on('ready', () => void this.reread());
  }

  private dispatch(entry: Channel, meta: ResultMeta): void {
    if (entry.watch && READY_STATES.has(meta.status as TaskState)) entry.early = meta;
    for (const waiter of entry.set) waiter(meta);
  }

  /**
   * Subscribe again (idempotent; ordered after ioredis's own) and read every waited-on record,
   * retried while the commands connection is still coming back. Never rejects.
   */
  private async reread(): Promise<void> {
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 2000)) {
      const entries = [...this.waiters.entries()].filter(([, e]) => e.set.size > 0);
      if (entries.length === 0) return;
      try {
        await this.sub.subscribe(...entries.map(([channel]) => channel));
        const metas = await this.getMany(entries.map(([, e]) => e.taskId));
        metas.forEach((meta, i) => {
          const [channel, entry] = entries[i]!;
          if (meta && READY_STATES.has(meta.status as TaskState) && this.waiters.get(channel) === entry) this.dispatch(entry, meta);
        });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  }

  /**
   * A wait's read of the record once subscribed, retried while Redis does not answer (the wait's
   * timeout or signal ends it): a failed read must neither end the wait nor leave it to a push that
   * may already have been sent. Resolves with a ready record; otherwise never.
   */
  private async readWhileWaiting(taskId: string, entry: Channel, waiting: () => boolean): Promise<ResultMeta> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        await entry.subscribed;
        const current = await this.get(taskId);
        if (current && READY_STATES.has(current.status as TaskState)) return current;
        return new Promise<never>(() => undefined);
      } catch {
        if (!waiting() || this.closed) return new Promise<never>(() => undefined);
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  }

  static async open(settings: RedisSettings): Promise<RedisBackend> {
    const redis = await connectRedis(settings);
    const sub = await connectRedis(settings, 'subscriber');
    return new RedisBackend(redis, sub, settings);
  }

  async store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    await this.redis.celeriacStoreResult(metaKey(meta.task_id), JSON.stringify(meta), options.expiresMs);
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    const text = await this.redis.get(metaKey(taskId));
    return text ? (JSON.parse(text) as ResultMeta) : undefined;
  }

  async getMany(taskIds: readonly string[]): Promise<(ResultMeta | undefined)[]> {
    if (taskIds.length === 0) return [];
    const texts = await this.redis.mget(...taskIds.map(metaKey));
    return texts.map((t) => (t ? (JSON.parse(t) as ResultMeta) : undefined));
  }

  /** The key prefix applies to the PUBLISH channel too (the script publishes on the prefixed key). */
  private channelOf(taskId: string): string {
    return `${this.settings.keyPrefix}${metaKey(taskId)}`;
  }

  /**
   * Subscribe to a task's result as it is sent (Celery's `on_task_call` does the same), so a
   * `wait` right after finds the subscription made and the result perhaps already heard: the
   * round trip does not pay for SUBSCRIBE after the send. Bounded (`WATCH_MAX`) and brief
   * (`WATCH_MS`): a watch no wait joins is dropped, and `wait` works without one.
   */
  watch(taskId: string): void {
    const channel = this.channelOf(taskId);
    if (this.watching >= WATCH_MAX || this.waiters.has(channel)) return;
    const entry: Channel = { taskId, set: new Set(), subscribed: this.sub.subscribe(channel) };
    entry.watch = setTimeout(() => this.unwatch(channel, entry), WATCH_MS);
    entry.watch.unref();
    // A failed SUBSCRIBE: drop the watch (a wait that joined sees the failure itself).
    entry.subscribed.catch(() => this.unwatch(channel, entry));
    this.watching++;
    this.waiters.set(channel, entry);
  }

  /** The watch ends (dropped, or joined by a wait); false when it had already ended. */
  private endWatch(entry: Channel): boolean {
    if (!entry.watch) return false;
    clearTimeout(entry.watch);
    entry.watch = undefined;
    this.watching--;
    return true;
  }

  private unwatch(channel: string, entry: Channel): void {
    if (!this.endWatch(entry)) return;
    if (entry.set.size === 0 && this.waiters.get(channel) === entry) {
      this.waiters.delete(channel);
      void this.sub.unsubscribe(channel).catch(() => undefined);
    }
  }

  async wait(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    const channel = this.channelOf(taskId);
    let waiter: ((meta: ResultMeta) => void) | undefined;
    const pushed = new Promise<ResultMeta>((resolve) => {
      waiter = (meta) => {
        if (READY_STATES.has(meta.status as TaskState)) resolve(meta);
      };
    });
    let entry = this.waiters.get(channel);
    if (!entry) {
      entry = { taskId, set: new Set(), subscribed: this.sub.subscribe(channel) };
      this.waiters.set(channel, entry);
    }
    const set = entry.set;
    set.add(waiter!);
    const early = entry.early;
    // Joined: the watch is this wait's subscription now, released with it.
    this.endWatch(entry);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    let waiting = true;
    try {
      if (early) return early;
      // Subscribed first, then read: a result stored in between is in one or the other. Whichever
      // answers first wins — a push that arrives while the read is on its way does not wait for it.
      // A read that fails (Redis away) is not the wait's end: it is tried again while the wait lasts.
      const read = this.readWhileWaiting(taskId, entry, () => waiting);
      const stops: Promise<ResultMeta>[] = [read];
      if (options.timeoutMs !== undefined) {
        const ms = options.timeoutMs;
        stops.push(
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new TimeoutError(`Timed out after ${ms} ms waiting for task ${taskId}`, { taskId })), ms);
          }),
        );
      }
      if (options.signal) {
        const signal = options.signal;
        stops.push(
          new Promise<never>((_, reject) => {
            onAbort = () => reject(abortReason(signal));
            if (signal.aborted) onAbort();
            else signal.addEventListener('abort', onAbort, { once: true });
          }),
        );
      }
      return await Promise.race([pushed, ...stops]);
    } finally {
      waiting = false;
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
      set.delete(waiter!);
      if (set.size === 0) {
        this.waiters.delete(channel);
        // Not awaited: the caller has its answer. A later SUBSCRIBE to this channel goes out on the
        // same connection after this one, so Redis sees them in order.
        void this.sub.unsubscribe(channel).catch(() => undefined);
      }
    }
  }

  async forget(taskId: string): Promise<void> {
    await this.redis.del(metaKey(taskId));
  }

  async revoke(taskIds: readonly string[], options: { expiresMs: number }): Promise<void> {
    const now = Date.now();
    const pipe = this.redis.multi();
    for (const id of taskIds) pipe.zadd(REVOKED, now + options.expiresMs, id);
    // Expired revocations are trimmed on every write, so the set never grows without bound.
    pipe.zremrangebyscore(REVOKED, '-inf', now);
    await pipe.exec();
  }

  async revokedIds(): Promise<Set<string>> {
    return new Set(await this.redis.zrangebyscore(REVOKED, Date.now(), '+inf'));
  }

  /** Celery's saved group: `{"result": [[gid, null], [[[id, null], null], ...]]}` — Python's `GroupResult.restore` reads it. */
  async saveGroup(groupId: string, taskIds: readonly string[], options: { expiresMs: number }): Promise<void> {
    const value = { result: [[groupId, null], taskIds.map((id) => [[id, null], null])] };
    await this.redis.set(tasksetKey(groupId), JSON.stringify(value), 'PX', options.expiresMs);
  }

  async restoreGroup(groupId: string): Promise<string[] | undefined> {
    const text = await this.redis.get(tasksetKey(groupId));
    if (!text) return undefined;
    const { result } = JSON.parse(text) as { result: [unknown, [[string, unknown], unknown][]] };
    return result[1].map(([[id]]) => id);
  }

  /** Celery's chord size key: `celery-taskset-meta-<gid>.s`. */
  async chordInit(groupId: string, size: number, options: { expiresMs: number }): Promise<void> {
    await this.redis.set(`${tasksetKey(groupId)}.s`, String(size), 'PX', options.expiresMs);
  }

  async chordPartReturn(groupId: string, part: ChordPart, options: { expiresMs: number }): Promise<ChordPart[] | null> {
    const key = tasksetKey(groupId);
    // Celery's member format, so Python and celeriac workers complete each other's chords.
    const member = JSON.stringify([1, part.taskId, part.state, part.result]);
    const flat = (await this.redis.celeriacChordPartReturn(`${key}.j`, `${key}.s`, `${key}.t`, `${key}.d`, `${key}.c`, part.index, member, options.expiresMs)) as string[] | null;
    if (!flat) return null;
    const parts: ChordPart[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const [, taskId, state, result] = JSON.parse(flat[i]!) as [number, string, string, unknown];
      parts.push({ index: Number(flat[i + 1]), taskId, state, result });
    }
    return parts;
  }

  async chordComplete(groupId: string, options: { expiresMs: number }): Promise<void> {
    const key = tasksetKey(groupId);
    await this.redis.celeriacChordComplete(`${key}.j`, `${key}.s`, `${key}.t`, `${key}.d`, `${key}.c`, options.expiresMs);
  }

  private closed = false;

  async claimDedup(key: string, taskId: string, options: { readonly ttlMs: number; readonly replace: boolean }): Promise<string | null> {
    return (await this.redis.celeriacDedupClaim(dedupKey(key), taskId, options.ttlMs, options.replace ? '1' : '0')) ?? null;
  }

  async releaseDedup(key: string, taskId: string): Promise<void> {
    await this.redis.celeriacDedupRelease(dedupKey(key), taskId);
  }

  async reserveRateSlot(taskName: string, bucket: string, intervalMs: number): Promise<number> {
    return this.redis.celeriacRateReserve(`celeriac-rate-${bucket}`, rateOverrideKey(taskName), Math.max(1, Math.round(intervalMs)));
  }

  async setRateOverride(taskName: string, intervalMs: number | null | undefined): Promise<void> {
    if (intervalMs === undefined) await this.redis.del(rateOverrideKey(taskName));
    else await this.redis.set(rateOverrideKey(taskName), intervalMs === null ? 'none' : String(Math.max(1, Math.round(intervalMs))));
  }

  async acquireLease(key: string, holder: string, limit: number, leaseMs: number): Promise<boolean> {
    return (await this.redis.celeriacLeaseAcquire(`celeriac-lease-${key}`, holder, limit, leaseMs)) === 1;
  }

  async releaseLease(key: string, holder: string): Promise<void> {
    await this.redis.zrem(`celeriac-lease-${key}`, holder);
  }

  async readFlags(): Promise<Record<string, string>> {
    return this.redis.hgetall(FLAGS);
  }

  async writeFlag(name: string, value: string | null): Promise<void> {
    if (value === null) await this.redis.hdel(FLAGS, name);
    else await this.redis.hset(FLAGS, name, value);
  }

  async keepFailed(record: FailedTaskRecord, retention: FailedRetention): Promise<void> {
    await this.redis.celeriacKeepFailed(FAILED, FAILED_RECORDS, record.id, record.endedAt, JSON.stringify(record), retention.maxCount, Date.now() - retention.maxAgeMs);
  }

  async listFailed(page: { readonly offset: number; readonly limit: number }): Promise<FailedTaskRecord[]> {
    const ids = await this.redis.zrange(FAILED, page.offset, page.offset + page.limit - 1);
    if (ids.length === 0) return [];
    const texts = await this.redis.hmget(FAILED_RECORDS, ...ids);
    return texts.filter((t): t is string => t !== null).map((t) => JSON.parse(t) as FailedTaskRecord);
  }

  async failedCount(): Promise<number> {
    return this.redis.zcard(FAILED);
  }

  async getFailed(id: string): Promise<FailedTaskRecord | undefined> {
    const text = await this.redis.hget(FAILED_RECORDS, id);
    return text ? (JSON.parse(text) as FailedTaskRecord) : undefined;
  }

  async takeFailed(id: string): Promise<FailedTaskRecord | undefined> {
    const text = await this.redis.celeriacTakeFailed(FAILED, FAILED_RECORDS, id);
    return text ? (JSON.parse(text) as FailedTaskRecord) : undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const [channel, entry] of this.waiters) this.unwatch(channel, entry);
    this.sub.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    celeriacStoreResult(key: string, meta: string, expiresMs: number): Result<unknown, Context>;
    celeriacChordPartReturn(j: string, s: string, t: string, d: string, c: string, index: number, member: string, expiresMs: number): Result<unknown, Context>;
    celeriacChordComplete(j: string, s: string, t: string, d: string, c: string, expiresMs: number): Result<unknown, Context>;
    celeriacDedupClaim(key: string, taskId: string, ttlMs: number, replace: '0' | '1'): Result<string | null, Context>;
    celeriacDedupRelease(key: string, taskId: string): Result<number, Context>;
    celeriacRateReserve(bucket: string, override: string, intervalMs: number): Result<number, Context>;
    celeriacLeaseAcquire(key: string, holder: string, limit: number, leaseMs: number): Result<number, Context>;
    celeriacKeepFailed(index: string, records: string, id: string, endedAt: number, record: string, maxCount: number, oldest: number): Result<number, Context>;
    celeriacTakeFailed(index: string, records: string, id: string): Result<string | null, Context>;
  }
}
