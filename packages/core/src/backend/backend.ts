import type { ResultMeta } from '../protocol/schema.js';
import type { WireMessage } from '../protocol/message.js';

/**
 * A task that raised and had no retry left, kept for `celeriac failed` (RQ's
 * FailedJobRegistry) beside the dead letters: what it was called with (its
 * message, so `failed requeue` sends it again as it was), how it failed,
 * where and when.
 */
export interface FailedTaskRecord {
  readonly id: string;
  readonly taskName: string;
  /** The queue it was consumed from (where a requeue sends it). */
  readonly queue: string;
  /** The message as it was last delivered (args, kwargs, options, links). */
  readonly wire: WireMessage;
  readonly excType: string;
  readonly excMessage: string;
  readonly traceback: string | null;
  /** Retries it had had. */
  readonly retries: number;
  /** The worker that ran it last, `celeriac@host`. */
  readonly worker: string;
  /** When that worker received it, started it, and it failed (epoch ms). Celery's messages carry no enqueue time. */
  readonly receivedAt: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** How many failed tasks are kept, and how long (the oldest go first). */
export interface FailedRetention {
  readonly maxCount: number;
  readonly maxAgeMs: number;
}

/** One chord header member's outcome. */
export interface ChordPart {
  readonly index: number;
  readonly taskId: string;
  readonly state: string;
  readonly result: unknown;
}

/** What a result backend can do, declared as data. */
export interface BackendCapabilities {
  /** `wait` is woken by the store (pub/sub) rather than by polling. */
  readonly push: boolean;
  /** Results survive a restart of every process. */
  readonly durable: boolean;
  /** Several processes can share it. */
  readonly crossProcess: boolean;
  /** Has the atomic chord join (`chordInit` / `chordPartReturn`); without it a chord is refused when sent. */
  readonly chords: boolean;
  /** Keeps revocations for workers that start later (`revoke` / `revokedIds`); otherwise they live only in broadcasts. */
  readonly revocations: boolean;
  /** `saveGroup` / `restoreGroup` work. */
  readonly savedGroups: boolean;
  /** Any client can read any task's result; false when results travel only to the client that sent the task (`rpc://`). */
  readonly sharedResults: boolean;
  /** Has `claimDedup` / `releaseDedup`, shared by every sender: `applyAsync(..., { deduplicate })` is refused without it. */
  readonly deduplication?: boolean;
  /** Has `reserveRateSlot`, `setRateOverride`, `acquireLease`, `releaseLease`: fleet-wide rate and concurrency limits. */
  readonly fleetLimits?: boolean;
  /** Has `readFlags` / `writeFlag`: durable fleet switches (`celeriac suspend`, `celeriac pause <queue>`). */
  readonly fleetFlags?: boolean;
  /** Has the failed-task registry (`keepFailed`, `listFailed`, `failedCount`, `getFailed`, `takeFailed`). */
  readonly failedRegistry?: boolean;
}

/** What `store` needs besides the record. */
export interface StoreOptions {
  readonly expiresMs: number;
  /** The task message's `reply_to` (the sender's reply queue): where `rpc://` sends the state. */
  readonly replyTo?: string | undefined;
}

export interface WaitOptions {
  /** Give up after this many ms with a {@link TimeoutError}. Undefined waits forever. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Where task states and results live. Records are Celery's
 * `celery-task-meta-<id>` shape so Python and celeriac read each other's.
 */
export interface ResultBackend {
  readonly kind: string;
  readonly capabilities: BackendCapabilities;
  /**
   * Store a state for a task. A stored SUCCESS is final: a later store for the
   * same id is ignored (a redelivered duplicate must not overwrite it).
   */
  store(meta: ResultMeta, options: StoreOptions): Promise<void>;
  get(taskId: string): Promise<ResultMeta | undefined>;
  getMany(taskIds: readonly string[]): Promise<(ResultMeta | undefined)[]>;
  /** Resolve with the task's record once it is in a ready state (SUCCESS, FAILURE, REVOKED). */
  wait(taskId: string, options?: WaitOptions): Promise<ResultMeta>;
  forget(taskId: string): Promise<void>;
  /** Record revocations with a TTL so a worker that starts later still honours them. */
  revoke(taskIds: readonly string[], options: { expiresMs: number }): Promise<void>;
  /**
   * Every task id revoked and not yet expired. Workers load it at start and
   * refresh it every second (broadcasts add to it in between), so checking a
   * message costs no round trip.
   */
  revokedIds(): Promise<Set<string>>;
  /** Save a group's member ids (Celery's `GroupResult.save()`: `celery-taskset-meta-<gid>` on Redis). */
  saveGroup(groupId: string, taskIds: readonly string[], options: { expiresMs: number }): Promise<void>;
  /** The member ids of a saved group, or undefined. */
  restoreGroup(groupId: string): Promise<string[] | undefined>;
  /** Record a chord's header size before its members are sent (Redis: `celery-taskset-meta-<gid>.s`). */
  chordInit(groupId: string, size: number, options: { expiresMs: number }): Promise<void>;
  /**
   * Join one header member's outcome, atomically. Counts distinct members (by
   * index), so a member that ran twice counts once. The caller that completes
   * the join gets the parts, in header order, and sends the body; the join is
   * kept until it calls {@link chordComplete}, so that if it dies before the body
   * is sent, its member's next run (the message was not acked) gets the parts
   * again and sends it then. After `chordComplete`, a late member gets null and
   * writes nothing. The join's keys expire in any case.
   */
  chordPartReturn(groupId: string, part: ChordPart, options: { expiresMs: number }): Promise<ChordPart[] | null>;
  /** The body of a completed join was sent (or its failure stored): end the join for good. */
  chordComplete(groupId: string, options: { expiresMs: number }): Promise<void>;
  /**
   * Make sure replies can reach this client before a task is sent (`rpc://` declares
   * its reply queue). Called by the app before each send for schemes in `REPLY_BACKENDS`.
   */
  prepareSend?(): Promise<void>;
  /**
   * Deduplication (`applyAsync(..., { deduplicate })`), one atomic step. With `replace` false: make
   * `taskId` the holder of `key` for `ttlMs` unless another holds it, resolving to that holder's id
   * (the caller sends nothing) or null (this one holds it now and is sent). With `replace` true
   * (debounce): make `taskId` the holder whatever, the TTL starting again, resolving to the holder it
   * replaced (which the caller revokes), or null.
   */
  claimDedup?(key: string, taskId: string, options: { readonly ttlMs: number; readonly replace: boolean }): Promise<string | null>;
  /** Let go of `key` if `taskId` still holds it (its send failed, so later sends must not point at it). */
  releaseDedup?(key: string, taskId: string): Promise<void>;
  /**
   * A fleet-wide rate limit, one atomic step: book the next free slot of `bucket`, slots `intervalMs`
   * apart on the store's clock (Redis TIME), or the task's override when one is set; resolves to ms
   * until the booked slot (0: now). An override of `null` (limit lifted) books nothing and resolves 0.
   */
  reserveRateSlot?(taskName: string, bucket: string, intervalMs: number): Promise<number>;
  /** Change a task's fleet-wide interval for every worker (`celeriac control rate_limit`); `undefined` removes the override, `null` lifts the limit. */
  setRateOverride?(taskName: string, intervalMs: number | null | undefined): Promise<void>;
  /**
   * A fleet-wide concurrency limit, one atomic step: give `holder` one of `limit` leases of `key` for
   * `leaseMs` (expired leases do not count; a holder that has one renews it); resolves to whether it has one.
   */
  acquireLease?(key: string, holder: string, limit: number, leaseMs: number): Promise<boolean>;
  releaseLease?(key: string, holder: string): Promise<void>;
  /** Every fleet switch that is on (`suspended`, `paused:<queue>`), read by each worker at start and every 2 s. */
  readFlags?(): Promise<Record<string, string>>;
  /** Turn a fleet switch on (a value) or off (null); it stays until turned off (no expiry). */
  writeFlag?(name: string, value: string | null): Promise<void>;
  /** Keep a failed task (replacing one with its id), then drop what the retention no longer allows. */
  keepFailed?(record: FailedTaskRecord, retention: FailedRetention): Promise<void>;
  /** Failed tasks, oldest first, a page at a time. */
  listFailed?(page: { readonly offset: number; readonly limit: number }): Promise<FailedTaskRecord[]>;
  failedCount?(): Promise<number>;
  getFailed?(id: string): Promise<FailedTaskRecord | undefined>;
  /** Remove one and return it (undefined when it is not there). */
  takeFailed?(id: string): Promise<FailedTaskRecord | undefined>;
  /**
   * A task whose result is wanted is about to be sent by this client: a push backend may start
   * listening for it now, so a `wait` soon after is ready at once. Best-effort and bounded;
   * never required for `wait` to work.
   */
  watch?(taskId: string): void;
  close(): Promise<void>;
}
