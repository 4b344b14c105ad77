import { randomUUID } from 'node:crypto';
import type { BeatEntry, CeleriacApp } from '@celeriac/core';
import { compileSchedule, slotsBetween, type Schedule } from './schedule.js';
import type { BeatStore, EntryState } from './store/store.js';

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
}

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
    if (!this.leader) return this.leaseMs / 3;
    const now = await this.store.time();
    let nextDue = Infinity;
    for (const loaded of await this.entries()) {
      if (!loaded.entry.enabled) continue;
      const state = await this.advance(loaded, now);
      if (state.nextRunAt !== null) nextDue = Math.min(nextDue, state.nextRunAt);
    }
    return nextDue - now;
  }

  private async advance({ entry, schedule, key }: Loaded, now: number): Promise<EntryState> {
    let state = await this.store.getState(entry.name);
    if (!state || state.scheduleKey !== key) {
      // New or edited: its next run is the schedule's next slot from now.
      state = { lastRunAt: state?.lastRunAt ?? null, nextRunAt: schedule.next(now), scheduleKey: key };
      if (state.nextRunAt !== null && state.nextRunAt > now) {
        await this.store.setState(entry.name, state);
        return state;
      }
    }
    if (state.nextRunAt === null || state.nextRunAt > now) return state;
    const due = [state.nextRunAt, ...slotsBetween(schedule, state.nextRunAt, now)];
    const latest = due[due.length - 1]!;
    let fire: number[];
    if (entry.missed === 'skip') fire = now - latest <= entry.graceMs ? [latest] : [];
    else if (entry.missed === 'runOnce') fire = [latest];
    else fire = due.slice(-entry.missed.catchUp);
    const missed = due.filter((s) => !fire.includes(s));
    if (missed.length > 0) {
      this.log.warn(
        { entry: entry.name, missed: missed.length, policy: entry.missed, first: new Date(missed[0]!).toISOString() },
        `beat: ${missed.length} missed run(s) of ${entry.name} not sent (policy ${JSON.stringify(entry.missed)})`,
      );
    }
    const ttl = Math.min(86_400_000, Math.max(3_600_000, 10 * (schedule.periodMs ?? 0)));
    for (const slot of fire) {
      if (!(await this.store.claimSlot(entry.name, slot, ttl))) continue; // another beat sent it
      await this.send(entry, slot);
    }
    const next = { lastRunAt: fire.length ? fire[fire.length - 1]! : state.lastRunAt, nextRunAt: schedule.next(now), scheduleKey: key };
    await this.store.setState(entry.name, next);
    return next;
  }

  private async send(entry: BeatEntry, slot: number): Promise<void> {
    const { queue, priority, expires, headers } = entry.options;
    await this.app.sendTask(entry.task, entry.args, entry.kwargs, {
      taskId: slotTaskId(entry.name, slot),
      headers: { ...headers, 'x-celeriac-beat-entry': entry.name, 'x-celeriac-beat-slot': new Date(slot).toISOString() },
      ...(queue ? { queue } : {}),
      ...(priority !== undefined ? { priority } : {}),
      ...(expires !== undefined ? { expires: new Date(slot + expires) } : {}),
    });
    this.sent.set(entry.name, (this.sent.get(entry.name) ?? 0) + 1);
    this.log.info({ entry: entry.name, task: entry.task, slot: new Date(slot).toISOString() }, `beat: sent ${entry.task}`);
  }

  /** Stop ticking and give up the lease so another beat takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    if (this.leader) await this.store.releaseLeadership(this.token).catch(() => undefined);
    this.leader = false;
  }

  get isLeader(): boolean {
    return this.leader;
  }
}
