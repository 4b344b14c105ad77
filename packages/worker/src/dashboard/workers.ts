/**
 * What the dashboard knows of each worker, from two sources that complement
 * each other: `celeryev` events (worker-online / heartbeat / offline, and the
 * hostname of any task event) and the replies to the fleet monitor's periodic
 * control broadcasts (`stats`, `active_queues`, `registered`, `active`,
 * `reserved`). Replies are what make a Python Celery worker started
 * `--without-heartbeat` show up, with its pool, queues and tasks.
 */
import type { CeleryEvent, ControlReply } from '@celeriac/core/spi';
import type { WorkerView } from './model.js';

/** Added to 2 × the heartbeat interval before a silent worker is called offline (a GC pause, a busy broker). */
const HEARTBEAT_SLACK_MS = 3000;

interface Entry {
  hostname: string;
  software: string | null;
  /** When the last heartbeat (or worker-online) arrived here: local receipt time, so clock skew does not matter. */
  heartbeatAt: number | null;
  freqS: number | null;
  /** When any event or control reply from it last arrived. */
  lastEventAt: number | null;
  lastReplyAt: number | null;
  /** A worker-offline event, until newer evidence of life. */
  offlineAt: number | null;
  suspended: boolean;
  pool: string | null;
  concurrency: number | null;
  active: number | null;
  processed: number | null;
  queues: string[];
  registered: string[];
  loadavg: number[] | null;
  /** Unacked tasks per queue (its active + reserved), from the last round of replies. */
  unacked: Map<string, number> | null;
}

/** The replies of one round of control broadcasts, merged by node name. */
export interface ControlRound {
  readonly stats: Record<string, unknown>;
  readonly activeQueues: Record<string, unknown>;
  readonly registered: Record<string, unknown> | null;
  readonly active: Record<string, unknown>;
  readonly reserved: Record<string, unknown>;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Merge `broadcast()` replies (`[{ host: reply }, ...]`) into one record. */
export function mergeReplies(replies: readonly ControlReply[]): Record<string, unknown> {
  return Object.assign({}, ...replies) as Record<string, unknown>;
}

export class WorkerTracker {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** How often the monitor broadcasts its control round: a worker that stops answering for two rounds is offline. */
    private readonly pollMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private entry(hostname: string): Entry {
    let e = this.entries.get(hostname);
    if (!e) {
      e = {
        hostname, software: null, heartbeatAt: null, freqS: null, lastEventAt: null, lastReplyAt: null, offlineAt: null, suspended: false,
        pool: null, concurrency: null, active: null, processed: null, queues: [], registered: [], loadavg: null, unacked: null,
      };
      this.entries.set(hostname, e);
    }
    return e;
  }

  /** Apply one event; resolves to the hostname whose state may have changed. */
  onEvent(event: CeleryEvent): string | undefined {
    if (typeof event.hostname !== 'string' || !event.hostname) return undefined;
    // A client's task-sent event names the client, not a worker.
    if (event.type === 'task-sent') return undefined;
    const e = this.entry(event.hostname);
    const at = this.now();
    e.lastEventAt = at;
    if (event.type === 'worker-offline') {
      e.offlineAt = at;
      return e.hostname;
    }
    if (event.type === 'worker-online' || event.type === 'worker-heartbeat') {
      e.offlineAt = null;
      e.heartbeatAt = at;
      e.freqS = num(event.freq) ?? e.freqS ?? 2;
      if (typeof event.sw_ident === 'string') e.software = `${event.sw_ident}${typeof event.sw_ver === 'string' ? ` ${event.sw_ver}` : ''}`;
      e.active = num(event.active) ?? e.active;
      e.processed = num(event.processed) ?? e.processed;
      if (Array.isArray(event.loadavg)) e.loadavg = event.loadavg.filter((n): n is number => typeof n === 'number');
    } else {
      // Any other event from it is evidence of life, newer than an offline it sent before restarting.
      e.offlineAt = null;
    }
    return e.hostname;
  }

  /** Apply a round of control replies: every worker that answered `stats` is alive now. */
  onControlRound(round: ControlRound): void {
    const at = this.now();
    for (const [hostname, raw] of Object.entries(round.stats)) {
      const s = obj(raw);
      const e = this.entry(hostname);
      e.lastReplyAt = at;
      e.offlineAt = null;
      const pool = obj(s.pool);
      e.pool = typeof pool.implementation === 'string' ? pool.implementation : e.pool;
      e.concurrency = num(pool['max-concurrency']) ?? e.concurrency;
      const total = obj(s.total);
      e.processed = Object.values(total).reduce<number>((a, b) => a + (num(b) ?? 0), 0);
      const own = obj(s.celeriac);
      e.suspended = own.suspended === true;
      e.active = num(own.active) ?? arr(round.active[hostname]).length;
    }
    for (const [hostname, raw] of Object.entries(round.activeQueues)) {
      const names = arr(raw).map((q) => obj(q).name).filter((n): n is string => typeof n === 'string');
      this.entry(hostname).queues = names;
    }
    for (const [hostname, raw] of Object.entries(round.registered ?? {})) {
      // Python may annotate names (`tasks.add [rate_limit=10/s]`): the name is the first word.
      this.entry(hostname).registered = arr(raw).filter((n): n is string => typeof n === 'string').map((n) => n.split(' ')[0]!);
    }
    for (const hostname of Object.keys(round.stats)) {
      const counts = new Map<string, number>();
      for (const item of [...arr(round.active[hostname]), ...arr(round.reserved[hostname])]) {
        const info = obj(obj(item).delivery_info);
        const queue = typeof info.routing_key === 'string' && info.routing_key ? info.routing_key : null;
        if (queue) counts.set(queue, (counts.get(queue) ?? 0) + 1);
      }
      this.entry(hostname).unacked = counts;
    }
  }

  /** Workers that answer control but send no heartbeat: their events are off (or, for Python, its heart is). */
  silent(): string[] {
    return [...this.entries.values()].filter((e) => e.lastReplyAt !== null && e.heartbeatAt === null && e.offlineAt === null).map((e) => e.hostname);
  }

  /** Workers that have never been asked for their registered tasks (new since the last full round). */
  needsRegistered(): boolean {
    return [...this.entries.values()].some((e) => e.lastReplyAt !== null && e.registered.length === 0);
  }

  private stateOf(e: Entry, at: number): WorkerView['state'] {
    if (e.offlineAt !== null) return 'offline';
    const beating = e.heartbeatAt !== null && at - e.heartbeatAt <= 2 * (e.freqS ?? 2) * 1000 + HEARTBEAT_SLACK_MS;
    const window = 2 * this.pollMs + HEARTBEAT_SLACK_MS;
    const answering = e.lastReplyAt !== null && at - e.lastReplyAt <= window;
    const eventful = e.lastEventAt !== null && at - e.lastEventAt <= window;
    if (!beating && !answering && !eventful) return 'offline';
    return e.suspended ? 'suspended' : 'running';
  }

  /** Every worker seen, online first, then by name. */
  views(): WorkerView[] {
    const at = this.now();
    const views = [...this.entries.values()].map((e): WorkerView => {
      const seen = Math.max(e.heartbeatAt ?? 0, e.lastEventAt ?? 0, e.lastReplyAt ?? 0);
      return {
        hostname: e.hostname,
        state: this.stateOf(e, at),
        software: e.software,
        heartbeatAgoS: e.heartbeatAt === null ? null : Math.max(0, Math.round((at - e.heartbeatAt) / 1000)),
        pool: e.pool,
        concurrency: e.concurrency,
        active: e.active,
        processed: e.processed,
        queues: [...e.queues],
        registered: [...e.registered],
        loadavg: e.loadavg ? [...e.loadavg] : null,
        lastSeen: seen,
      };
    });
    const rank = { running: 0, suspended: 1, offline: 2 } as const;
    return views.sort((a, b) => rank[a.state] - rank[b.state] || a.hostname.localeCompare(b.hostname));
  }

  /** Queues consumed by the workers online. */
  consumedQueues(): string[] {
    const at = this.now();
    return [...new Set([...this.entries.values()].filter((e) => this.stateOf(e, at) !== 'offline').flatMap((e) => e.queues))];
  }

  /** Unacked tasks in `queue` over the workers that answered the last round; null when none did. */
  unacked(queue: string): number | null {
    const at = this.now();
    let answered = false;
    let n = 0;
    for (const e of this.entries.values()) {
      if (!e.unacked || this.stateOf(e, at) === 'offline') continue;
      answered = true;
      n += e.unacked.get(queue) ?? 0;
    }
    return answered ? n : null;
  }

  /** A worker's current state (for change detection), undefined when never seen. */
  state(hostname: string): WorkerView['state'] | undefined {
    const e = this.entries.get(hostname);
    return e ? this.stateOf(e, this.now()) : undefined;
  }

  hostnames(): string[] {
    return [...this.entries.keys()];
  }
}
