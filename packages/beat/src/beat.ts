import { randomUUID } from 'node:crypto';
import { CeleriacError, ErrorCodes, type BeatEntry, type CeleriacApp, type ErrorCode } from '@celeriac/core/spi';
import { compileSchedule, slotsBetween, type Schedule } from './schedule.js';
import type { BeatStore } from './store/store.js';

/** What beat reports; pino fits, and so does console. */
export interface BeatLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface BeatOptions {
  readonly store: BeatStore;
  /** Leader lease; a killed leader is replaced within this long. */
  readonly leaseMs?: number;
  /** Longest sleep between ticks. */
  readonly maxTickMs?: number;
  readonly logger?: BeatLogger;
  /**
   * Backoff between attempts to send a slot whose send failed: `initialMs`
   * after the first failure, doubling, never more than `maxMs` (defaults 200 ms
   * and 5 s). Counted on the store's clock from the tick that failed.
   */
  readonly sendRetry?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** A slot of an entry that this beat has to come back for. */
interface Retry {
  readonly slot: number;
  /** Attempts so far that did not send it. */
  attempts: number;
  /** Not before this instant (store clock). */
  retryAt: number;
  /** Another beat holds the claim and has neither sent the slot nor given it back yet. */
  readonly claimedElsewhere: boolean;
  /** This beat may still hold the slot's claim (giving it back failed): give it back before claiming again. */
  mayHoldClaim: boolean;
  readonly lastError?: unknown;
}

/**
 * Send failures no retry can mend: the message itself is refused, or the
 * transport cannot carry it. Anything else (BROKER_UNAVAILABLE, BROKER_BLOCKED,
 * TIMEOUT, UNROUTABLE, an unexpected error) is retried.
 */
const PERMANENT_SEND_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCodes.PAYLOAD_TOO_LARGE,
  ErrorCodes.CAPABILITY_MISSING,
  ErrorCodes.CONFIG_INVALID,
  ErrorCodes.URL_INVALID,
  ErrorCodes.TASK_ARGS_INVALID,
  ErrorCodes.MESSAGE_MALFORMED,
  ErrorCodes.MESSAGE_TOO_DEEP,
  ErrorCodes.CONTENT_TYPE_REJECTED,
]);

const isPermanent = (err: unknown): boolean => err instanceof CeleriacError && PERMANENT_SEND_ERRORS.has(err.code);
const iso = (slot: number): string => new Date(slot).toISOString();

/** An entry with its compiled schedule. */
interface Loaded {
  readonly entry: BeatEntry;
  readonly schedule: Schedule;
  readonly key: string;
}

const silent: BeatLogger = { info() {}, warn() {}, error() {} };

/** The task id of an entry's slot: the same on every beat, so a slot is recognisable wherever it was sent. */
export const slotTaskId = (name: string, slot: number): string => `beat:${name}:${new Date(slot).toISOString()}`;

/**
 * The periodic scheduler. Only the holder of the leader lease sends; every
 * (entry, slot) is claimed once in the store before it is sent, so a paused or
 * partitioned former leader that wakes up cannot send a slot twice. Slots come
 * from the schedule and the store's reference clock, not from when a beat ran.
 *
 * A send that fails (the broker briefly unavailable) is not a sent slot: the
 * beat gives the slot's claim back, keeps the slot as the entry's next run, and
 * tries again after a backoff ({@link BeatOptions.sendRetry}), until the send
 * goes out or the entry's next slot is due. Then the entry is treated as after
 * a downtime: its missed policy picks the slots to send (`skip` and `runOnce`
 * send only the newest; `catchUp: n` keeps trying the failed slot while it is
 * among the n newest) and a slot given up on is logged as an error
 * (`BEAT_SEND_ABANDONED`), never dropped silently. Celery's beat retries a
 * publish a few times (kombu's retry policy) and then skips the run; retrying
 * up to the next slot keeps the run without ever sending two runs of an entry
 * back to back for one failure. Failures that no retry can mend (an oversized
 * message, a transport that cannot delay) are logged and not retried.
 *
 * Exactly once across beats: a beat sends a slot only under its claim, and
 * gives a claim back only for a send that failed, before trying again under a
 * new claim. A beat that finds the newest due slot claimed by another beat
 * does not move past it: that beat may still be sending (a send that outlasted
 * its lease) or may give it back after a failure, so it looks again after the
 * backoff. A send whose outcome is unknown (a publish that timed out waiting
 * for the broker's confirm) can still reach the broker twice, with the same
 * slot task id, as with any publish retry.
 */
export class Beat {
  readonly token = randomUUID();
  private readonly store: BeatStore;
  private readonly leaseMs: number;
  private readonly maxTickMs: number;
  private readonly log: BeatLogger;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private leader = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  /** Per entry name, the slot this beat has to come back for. */
  private readonly retries = new Map<string, Retry>();
  /** Per entry name, the last slot this beat sent: its own claim, should the state write after it have failed. */
  private readonly lastSent = new Map<string, number>();
  /** Sent slots, for tests and `beat list`: entry name → count. */
  readonly sent = new Map<string, number>();

  constructor(
    readonly app: CeleriacApp,
    options: BeatOptions,
  ) {
    this.store = options.store;
    this.leaseMs = options.leaseMs ?? 10_000;
    this.maxTickMs = options.maxTickMs ?? 1000;
    this.log = options.logger ?? silent;
    this.retryInitialMs = options.sendRetry?.initialMs ?? 200;
    this.retryMaxMs = Math.max(this.retryInitialMs, options.sendRetry?.maxMs ?? 5000);
    // Beat sends and never waits: no send-time result subscriptions.
    app.watchResultsOnSend = false;
  }

  /** Entries from code and from the run-time API (the API wins on a name clash). */
  async entries(): Promise<Loaded[]> {
    const byName = new Map<string, BeatEntry>();
    for (const e of this.app.beat.entries()) byName.set(e.name, e);
    for (const e of await this.store.listEntries()) byName.set(e.name, e);
    return [...byName.values()].map((entry) => ({
      entry,
      schedule: compileSchedule(entry.schedule, this.app.beat.timezone),
      key: JSON.stringify(entry.schedule),
    }));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      let sleep = this.maxTickMs;
      try {
        sleep = await this.tick();
      } catch (err) {
        this.log.error({ err }, 'beat tick failed; retrying');
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, Math.max(10, Math.min(sleep, this.maxTickMs, this.leaseMs / 3)));
      });
    }
  }

  /** One pass: hold the lease, send what is due, say how long to sleep. */
  async tick(): Promise<number> {
    const wasLeader = this.leader;
    this.leader = await this.store.acquireLeadership(this.token, this.leaseMs);
    if (wasLeader && !this.leader) this.log.warn({ code: 'LEADERSHIP_LOST' }, 'beat lost the leader lease; another beat sends now');
    if (!wasLeader && this.leader) this.log.info({}, 'beat is the leader');
    if (!this.leader) {
      // Slots still to send are the new leader's now (their state says they are due): hand over their claims.
      await this.dropRetries();
      return this.leaseMs / 3;
    }
    const now = await this.store.time();
    let nextDue = Infinity;
    for (const loaded of await this.entries()) {
      if (!loaded.entry.enabled) continue;
      nextDue = Math.min(nextDue, await this.advance(loaded, now));
    }
    return nextDue - now;
  }

  /** Send what is due of one entry; returns when it next needs this beat (store clock). */
  private async advance({ entry, schedule, key }: Loaded, now: number): Promise<number> {
    const stored = await this.store.getState(entry.name);
    let state = stored;
    if (!state || state.scheduleKey !== key) {
      // New or edited: its next run is the schedule's next slot from now.
      state = { lastRunAt: state?.lastRunAt ?? null, nextRunAt: schedule.next(now), scheduleKey: key };
      if (state.nextRunAt !== null && state.nextRunAt > now) {
        await this.store.setState(entry.name, state);
        await this.dropRetry(entry.name);
        return state.nextRunAt;
      }
    }
    if (state.nextRunAt === null || state.nextRunAt > now) {
      // Whatever this beat was retrying is behind the entry's state now (another beat sent it).
      await this.dropRetry(entry.name);
      return state.nextRunAt ?? Infinity;
    }
    const due = [state.nextRunAt, ...slotsBetween(schedule, state.nextRunAt, now)];
    const latest = due[due.length - 1]!;
    const pending = this.retries.get(entry.name);
    if (pending && !due.includes(pending.slot)) await this.dropRetry(entry.name);
    const retrying = this.retries.get(entry.name);
    let fire: number[];
    // A slot being retried that is still the newest one is sent even past the grace window: it was on time when first tried.
    if (retrying?.slot === latest) fire = [latest];
    else if (entry.missed === 'skip') fire = now - latest <= entry.graceMs ? [latest] : [];
    else if (entry.missed === 'runOnce') fire = [latest];
    else fire = due.slice(-entry.missed.catchUp);
    // The backoff holds the entry back only while the retried slot is the first to send: a newer slot that the
    // missed policy sends instead (skip, runOnce) is not kept waiting.
    if (retrying && fire[0] === retrying.slot && now < retrying.retryAt) return Math.min(retrying.retryAt, schedule.next(latest) ?? Infinity);
    const missed = due.filter((s) => !fire.includes(s));
    if (retrying && missed.includes(retrying.slot)) await this.giveUp(entry, retrying);
    const notTried = missed.filter((s) => s !== retrying?.slot);
    if (notTried.length > 0) {
      this.log.warn(
        { entry: entry.name, missed: notTried.length, policy: entry.missed, first: iso(notTried[0]!) },
        `beat: ${notTried.length} missed run(s) of ${entry.name} not sent (policy ${JSON.stringify(entry.missed)})`,
      );
    }
    const ttl = Math.min(86_400_000, Math.max(3_600_000, 10 * (schedule.periodMs ?? 0)));
    let lastRunAt = state.lastRunAt;
    let comeBackFor: number | undefined;
    for (const slot of fire) {
      if ((await this.sendSlot(entry, slot, ttl, slot === latest, now)) === 'again') {
        comeBackFor = slot;
        break;
      }
      lastRunAt = slot;
    }
    // A slot to come back for stays the entry's next run, so a beat that takes over finds it due too.
    const next = { lastRunAt, nextRunAt: comeBackFor ?? schedule.next(now), scheduleKey: key };
    // Unchanged state is not written back: a beat waiting on another's claim must not undo that beat's progress.
    if (!stored || stored.lastRunAt !== next.lastRunAt || stored.nextRunAt !== next.nextRunAt || stored.scheduleKey !== key) {
      await this.store.setState(entry.name, next);
    }
    return comeBackFor !== undefined ? this.retries.get(entry.name)!.retryAt : (next.nextRunAt ?? Infinity);
  }

  /**
   * Claim one slot and send it. `done`: sent, sent by another beat, or refused
   * for good; `again`: not sent yet, come back after the backoff.
   */
  private async sendSlot(entry: BeatEntry, slot: number, ttl: number, newest: boolean, now: number): Promise<'done' | 'again'> {
    const name = entry.name;
    const pending = this.retries.get(name);
    if (pending?.slot === slot && pending.mayHoldClaim) {
      // Our claim from a failed attempt was not given back then; it must be now, or the claim below fails against ourselves.
      await this.store.releaseSlot(name, slot, this.token);
      pending.mayHoldClaim = false;
    }
    let claimed: boolean;
    try {
      claimed = await this.store.claimSlot(name, slot, ttl, this.token);
    } catch (err) {
      // The store may have taken the claim before it failed to answer: give it back before the next attempt.
      this.noteRetry(name, slot, now, { claimedElsewhere: false, mayHoldClaim: true, lastError: err });
      throw err;
    }
    if (!claimed && this.lastSent.get(name) === slot) return 'done'; // ours, sent; only the state write after it failed
    if (!claimed) {
      // Another beat claimed it: it sent it, or it is sending it still (a send that outlasted its lease), or its
      // send failed and it gives the claim back. An older slot is left to it; the newest due one is looked at
      // again after a backoff rather than moved past, until that beat's progress shows or the next slot is due.
      if (!newest) return 'done';
      this.noteRetry(name, slot, now, { claimedElsewhere: true, mayHoldClaim: false });
      return 'again';
    }
    try {
      await this.send(entry, slot);
    } catch (err) {
      if (isPermanent(err)) {
        this.retries.delete(name);
        this.log.error(
          { err, code: 'BEAT_SEND_FAILED', permanent: true, entry: name, task: entry.task, slot: iso(slot) },
          `beat: ${entry.task} for ${name} at ${iso(slot)} was refused (${(err as CeleriacError).code}); not retried`,
        );
        return 'done';
      }
      // Give the claim back at once: if this beat cannot send it, a beat that takes over can.
      let mayHoldClaim = true;
      try {
        await this.store.releaseSlot(name, slot, this.token);
        mayHoldClaim = false;
      } catch {
        // The store is away too: given back before the next attempt (or when this beat stops or loses the lease).
      }
      const retry = this.noteRetry(name, slot, now, { claimedElsewhere: false, mayHoldClaim, lastError: err });
      this.log.warn(
        { err, code: 'BEAT_SEND_FAILED', entry: name, task: entry.task, slot: iso(slot), attempt: retry.attempts, retryInMs: retry.retryAt - now },
        `beat: sending ${entry.task} for ${name} at ${iso(slot)} failed (attempt ${retry.attempts}); retrying in ${retry.retryAt - now} ms`,
      );
      return 'again';
    }
    this.lastSent.set(name, slot);
    if (this.retries.get(name)?.slot === slot) this.retries.delete(name);
    return 'done';
  }

  /** Record one more attempt at `slot` that did not send it, and when to try next (doubling, capped). */
  private noteRetry(name: string, slot: number, now: number, how: Pick<Retry, 'claimedElsewhere' | 'mayHoldClaim' | 'lastError'>): Retry {
    const prior = this.retries.get(name);
    const attempts = prior?.slot === slot ? prior.attempts + 1 : 1;
    const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(attempts - 1, 30));
    const retry: Retry = { slot, attempts, retryAt: now + delay, ...how, mayHoldClaim: how.mayHoldClaim || (prior?.slot === slot && prior.mayHoldClaim) };
    this.retries.set(name, retry);
    return retry;
  }

  /** The missed policy no longer sends a slot this beat was retrying: say so, loudly when its send had failed. */
  private async giveUp(entry: BeatEntry, retry: Retry): Promise<void> {
    const fields = { entry: entry.name, task: entry.task, slot: iso(retry.slot), attempts: retry.attempts, policy: entry.missed };
    if (retry.claimedElsewhere) {
      this.log.warn(
        { ...fields, code: 'BEAT_SLOT_CLAIMED_ELSEWHERE' },
        `beat: ${entry.name} at ${iso(retry.slot)} is claimed by another beat that has not finished it; its next slot is due, so this beat moves on`,
      );
    } else {
      this.log.error(
        { ...fields, code: 'BEAT_SEND_ABANDONED', err: retry.lastError },
        `beat: gave up sending ${entry.task} for ${entry.name} at ${iso(retry.slot)} after ${retry.attempts} failed attempt(s): its next slot is due (policy ${JSON.stringify(entry.missed)})`,
      );
    }
    await this.dropRetry(entry.name);
  }

  /** Forget a slot to come back for, giving back its claim if this beat may hold it (best effort: claims expire). */
  private async dropRetry(name: string): Promise<void> {
    const retry = this.retries.get(name);
    if (!retry) return;
    this.retries.delete(name);
    if (retry.mayHoldClaim) await this.store.releaseSlot(name, retry.slot, this.token).catch(() => undefined);
  }

  private async dropRetries(): Promise<void> {
    for (const name of [...this.retries.keys()]) await this.dropRetry(name);
  }

  private async send(entry: BeatEntry, slot: number): Promise<void> {
    const { queue, priority, expires, headers } = entry.options;
    await this.app.sendTask(entry.task, entry.args, entry.kwargs, {
      taskId: slotTaskId(entry.name, slot),
      headers: { ...headers, 'x-celeriac-beat-entry': entry.name, 'x-celeriac-beat-slot': iso(slot) },
      ...(queue ? { queue } : {}),
      ...(priority !== undefined ? { priority } : {}),
      ...(expires !== undefined ? { expires: new Date(slot + expires) } : {}),
    });
    this.sent.set(entry.name, (this.sent.get(entry.name) ?? 0) + 1);
    this.log.info({ entry: entry.name, task: entry.task, slot: iso(slot) }, `beat: sent ${entry.task}`);
  }

  /** Stop ticking and give up the lease so another beat takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    await this.dropRetries();
    if (this.leader) await this.store.releaseLeadership(this.token).catch(() => undefined);
    this.leader = false;
  }

  get isLeader(): boolean {
    return this.leader;
  }
}
