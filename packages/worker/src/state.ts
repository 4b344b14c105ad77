import { CeleriacError, ErrorCodes, type TaskHeaders } from '@celeriac/core/spi';
import type { LazyAbort } from './lazy-abort.js';
import { RateLimiter } from './rate-limit.js';

/** Unknown task names remembered for their once-only warning; the oldest is forgotten past this. */
export const UNKNOWN_NAMES_MAX = 1000;

/**
 * Why the worker aborted a running task's signal (what a task sees in `ctx.signal.reason`):
 * revoked with terminate (`TASK_REVOKED`), or a cold shutdown (`WORKER_STOPPING`).
 */
export class Interrupt extends CeleriacError {
  constructor(readonly kind: 'terminate' | 'shutdown') {
    super(kind === 'terminate' ? ErrorCodes.TASK_REVOKED : ErrorCodes.WORKER_STOPPING, kind === 'terminate' ? 'Task revoked (terminate)' : 'Worker cold shutdown', { kind });
  }
}

/** A task this worker is running now (`inspect active`). */
export interface RunningTask {
  readonly controller: LazyAbort;
  readonly name: string;
  readonly headers: TaskHeaders;
  readonly queue: string;
  /** Epoch ms. */
  readonly startedAt: number;
}

/** Time limits set at run time by remote control (`time_limit`), ms; null lifts one. */
export interface RunTimeLimits {
  readonly hard?: number | null;
  readonly soft?: number | null;
}

/**
 * What one worker knows while it runs, in one place: the trace pipeline writes
 * it, remote control and metrics read it. Nothing here is durable — the
 * backend holds revocations for good, the broker holds the messages.
 */
export class WorkerState {
  /** Ids treated as revoked: the backend's list, refreshed, plus those heard by broadcast. */
  private readonly revokedIds = new Set<string>();
  /** Revocations heard by broadcast, with when (kept for their TTL even if the backend write lags). */
  private readonly heardRevoked = new Map<string, number>();
  /** Running tasks by id: their abort controller and what `inspect active` reports. */
  readonly running = new Map<string, RunningTask>();
  /** Unknown task names seen, with counts (logged once per name); bounded. */
  private readonly unknown = new Map<string, number>();
  /** Run-time time limits by task name. */
  readonly timeLimits = new Map<string, RunTimeLimits>();
  /** Tasks accepted by name (Celery's `stats.total`). */
  readonly totals = new Map<string, number>();
  /** Per-task rate limits (changed at run time by `rate_limit`). */
  readonly rateLimiter = new RateLimiter();

  isRevoked(id: string): boolean {
    return this.revokedIds.has(id);
  }

  get revoked(): readonly string[] {
    return [...this.revokedIds];
  }

  /** Take the backend's list of revoked ids; broadcast ones younger than `revokeExpiresMs` stay. */
  replaceRevoked(ids: Iterable<string>, revokeExpiresMs: number): void {
    const horizon = Date.now() - revokeExpiresMs;
    for (const [id, at] of this.heardRevoked) if (at < horizon) this.heardRevoked.delete(id);
    this.revokedIds.clear();
    for (const id of ids) this.revokedIds.add(id);
    for (const id of this.heardRevoked.keys()) this.revokedIds.add(id);
  }

  /** Flag ids as revoked (as heard by broadcast); with `terminate`, abort those running here. Returns the ids terminated. */
  revoke(ids: readonly string[], terminate: boolean): string[] {
    const terminated: string[] = [];
    for (const id of ids) {
      this.revokedIds.add(id);
      this.heardRevoked.set(id, Date.now());
      const running = terminate ? this.running.get(id) : undefined;
      if (running) {
        running.controller.abort(new Interrupt('terminate'));
        terminated.push(id);
      }
    }
    return terminated;
  }

  /** Count a message for an unregistered task; returns how many of that name were seen (1: warn now). */
  countUnknown(taskName: string): number {
    const seen = (this.unknown.get(taskName) ?? 0) + 1;
    // Bounded: names come from the wire, and a stream of made-up names must not grow a map for good.
    if (seen === 1 && this.unknown.size >= UNKNOWN_NAMES_MAX) this.unknown.delete(this.unknown.keys().next().value!);
    this.unknown.set(taskName, seen);
    return seen;
  }

  /** Count a message accepted for a run (as Celery's `stats.total` counts). */
  countAccepted(taskName: unknown): void {
    if (typeof taskName === 'string') this.totals.set(taskName, (this.totals.get(taskName) ?? 0) + 1);
  }
}
