import { resourceUsage } from 'node:process';
import { rateIntervalMs } from '../rate-limit.js';
import type { Delivery } from '@celeriac/core/spi';
import type { RunningTask } from '../state.js';
import type { ControlledWorker as Worker } from './controlled.js';

/** One remote-control command: Celery's name, its keyword arguments; the reply goes back as `{ hostname: reply }`. */
export type ControlHandler = (worker: Worker, args: Record<string, unknown>) => unknown;

const ok = (value: string) => ({ ok: value });
const nok = (value: string) => ({ error: value });

function list(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return typeof value === 'string' ? [value] : [];
}

function positive(value: unknown, fallback: number): number {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Celery's `Request.info()` for a running task (args as their repr, like `inspect active --safe`). */
function runningInfo(worker: Worker, t: RunningTask) {
  return {
    id: t.headers.id,
    name: t.name,
    args: t.headers.argsrepr ?? null,
    kwargs: t.headers.kwargsrepr ?? null,
    type: t.name,
    hostname: worker.hostname,
    time_start: t.startedAt / 1000,
    acknowledged: false,
    delivery_info: { exchange: '', routing_key: t.queue, priority: 0, redelivered: false },
    worker_pid: process.pid,
  };
}

/** The same for a message received but not started (`inspect reserved`). */
function reservedInfo(worker: Worker, d: Delivery) {
  const h = d.message.headers;
  return {
    id: typeof h.id === 'string' ? h.id : null,
    name: typeof h.task === 'string' ? h.task : null,
    args: h.argsrepr ?? null,
    kwargs: h.kwargsrepr ?? null,
    type: typeof h.task === 'string' ? h.task : null,
    hostname: worker.hostname,
    time_start: null,
    acknowledged: false,
    delivery_info: { exchange: '', routing_key: d.queue, priority: d.message.properties.priority ?? 0, redelivered: d.redelivered },
    worker_pid: null,
  };
}

/** A consumed queue as kombu's `Queue.as_dict(recurse=True)` describes it. */
function queueInfo(name: string) {
  return {
    name,
    exchange: { name, type: 'direct', arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
    routing_key: name,
    queue_arguments: null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: null,
  };
}

/** A worker's consumer state as `stats` reports it (the worker's `consumerHealth`; times in seconds). */
interface ConsumerReply {
  readonly state: string;
  readonly since: number;
  readonly error: string | null;
}

/**
 * Whether the worker receives work. Read from the worker when it reports it (`consumerHealth`, not
 * yet part of {@link Worker}'s control interface); otherwise "consuming" while it is not suspended.
 */
function consumerReply(worker: Worker): ConsumerReply {
  const h = (worker as Partial<{ consumerHealth: { state: string; since: number; error?: string } }>).consumerHealth;
  if (!h) return { state: worker.isSuspended ? 'suspended' : 'consuming', since: worker.startedAt / 1000, error: null };
  return { state: h.state, since: h.since / 1000, error: h.error ?? null };
}

/** What `inspect stats` answers: Celery's keys, plus a `celeriac` section. */
export function workerStats(worker: Worker) {
  const usage = resourceUsage();
  return {
    total: Object.fromEntries([...worker.state.totals].sort(([a], [b]) => a.localeCompare(b))),
    pid: process.pid,
    clock: String(worker.app.clock.current),
    uptime: Math.floor((Date.now() - worker.startedAt) / 1000),
    pool: { 'max-concurrency': worker.concurrency, processes: [process.pid], implementation: `celeriac:${worker.pool.kind}` },
    prefetch_count: worker.prefetchCount,
    broker: { transport: worker.transport?.kind ?? 'unknown', hostname: worker.app.config.broker.redacted },
    rusage: { utime: usage.userCPUTime / 1e6, stime: usage.systemCPUTime / 1e6, maxrss: usage.maxRSS },
    celeriac: {
      active: worker.state.running.size,
      reserved: worker.reserved.length,
      queues: [...worker.queues],
      suspended: worker.isSuspended,
      pausedQueues: [...worker.pausedQueues],
      /** `consuming`, `connecting`, `failing` (see `error`), `suspended`, `paused` or `stopped`: a worker that cannot consume says so. */
      consumer: consumerReply(worker),
      events: worker.eventsEnabled,
      lastHeartbeat: worker.lastHeartbeatAt === null ? null : worker.lastHeartbeatAt / 1000,
      rssBytes: process.memoryUsage().rss,
    },
  };
}

/**
 * The commands a worker answers, by Celery's names and with Celery's reply
 * shapes (`celery/worker/control.py`), plus celeriac's `suspend` / `resume`.
 * Looked up with `Object.hasOwn`, so `__proto__` and friends are unknown.
 */
export const COMMANDS: Readonly<Record<string, ControlHandler>> = Object.freeze({
  ping: () => ok('pong'),
  clock: (w) => ({ clock: w.app.clock.current }),
  stats: (w) => workerStats(w),
  active: (w) => [...w.state.running.values()].map((t) => runningInfo(w, t)),
  reserved: (w) => w.reserved.map((d) => reservedInfo(w, d)),
  // ETA and countdown tasks wait broker-side, never in a worker's memory: nothing is scheduled here.
  scheduled: () => [],
  registered: (w, args) => {
    const withBuiltins = args.builtins === true;
    return w.app.registry.names().filter((n) => withBuiltins || !n.startsWith('celery.')).sort();
  },
  revoked: (w) => [...w.state.revoked],
  active_queues: (w) => w.queues.map(queueInfo),
  query_task: (w, args) => {
    const out: Record<string, [string, unknown]> = {};
    for (const id of list(args.ids ?? args.task_id)) {
      const running = w.state.running.get(id);
      if (running) out[id] = ['active', runningInfo(w, running)];
      const reserved = w.reserved.find((d) => d.message.headers.id === id);
      if (!running && reserved) out[id] = ['reserved', reservedInfo(w, reserved)];
    }
    return out;
  },
  revoke: (w, args) => {
    const ids = list(args.task_id);
    const terminated = w.revoke(ids, args.terminate === true);
    if (args.terminate === true) return ok(terminated.length ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown');
    return ok(`tasks ${ids.join(', ')} flagged as revoked`);
  },
  terminate: (w, args) => COMMANDS.revoke!(w, { ...args, terminate: true }),
  rate_limit: async (w, args) => {
    const name = args.task_name;
    const task = typeof name === 'string' ? w.app.registry.get(name) : undefined;
    if (typeof name !== 'string' || !task) return nok('unknown task');
    const raw = args.rate_limit;
    const lift = raw === null || raw === undefined || raw === '' || raw === 0 || raw === '0';
    const rate = lift ? null : typeof raw === 'string' ? raw : typeof raw === 'number' ? `${raw}/s` : '';
    let interval: number | null = null;
    try {
      if (rate !== null) interval = rateIntervalMs(rate);
    } catch (err) {
      return nok(`Invalid rate limit string: ${(err as Error).message}`);
    }
    // A fleet-wide limit lives in the result backend: every worker that hears the command writes the
    // same override (idempotent), and workers started later read it too.
    if (task.options.globalRateLimit !== undefined) {
      const backend = await w.app.backend();
      await backend.setRateOverride?.(name, interval);
      return ok(rate === null ? 'fleet-wide rate limit disabled successfully' : 'new fleet-wide rate limit set successfully');
    }
    w.state.rateLimiter.set(name, rate);
    return ok(rate === null ? 'rate limit disabled successfully' : 'new rate limit set successfully');
  },
  time_limit: (w, args) => {
    const name = args.task_name;
    if (typeof name !== 'string' || !w.app.registry.get(name)) return nok('unknown task');
    const ms = (v: unknown) => (v === null || v === undefined ? null : Number(v) * 1000);
    const hard = ms(args.hard);
    const soft = ms(args.soft);
    if ((hard !== null && !(hard > 0)) || (soft !== null && !(soft > 0))) return nok('time limits must be positive numbers of seconds');
    if (hard !== null && w.pool.capabilities.hardTimeLimit === false) return nok(`the ${w.pool.kind} pool cannot enforce a hard time limit`);
    w.state.timeLimits.set(name, { hard, soft });
    return ok('time limits set successfully');
  },
  enable_events: (w) => ok(w.setEvents(true) ? 'task events enabled' : 'task events already enabled'),
  disable_events: (w) => ok(w.setEvents(false) ? 'task events disabled' : 'task events already disabled'),
  // Python's event receivers ask for a heartbeat when they start, so they see workers at once.
  heartbeat: (w) => {
    w.emitHeartbeat();
    return null;
  },
  // Python's mingle at start-up: nothing to sync from here (no reply, as to a node that is not there).
  hello: () => undefined,
  pool_grow: async (w, args) => {
    await w.resize(w.concurrency + positive(args.n, 1));
    return ok('pool will grow');
  },
  pool_shrink: async (w, args) => {
    await w.resize(w.concurrency - positive(args.n, 1));
    return ok('pool will shrink');
  },
  add_consumer: async (w, args) => {
    const queue = args.queue;
    if (typeof queue !== 'string' || !queue) return nok('add_consumer needs a queue name');
    if (w.queues.includes(queue)) return ok(`already consuming from ${queue}`);
    await w.setQueues([...w.queues, queue]);
    return ok(`add consumer ${queue}`);
  },
  cancel_consumer: async (w, args) => {
    const queue = args.queue;
    if (typeof queue !== 'string' || !w.queues.includes(queue)) return nok(`not consuming from ${String(queue)}`);
    await w.setQueues(w.queues.filter((q) => q !== queue));
    return ok(`no longer consuming from ${queue}`);
  },
  suspend: async (w) => {
    if (w.isSuspended) return ok('already suspended');
    await w.suspend();
    return ok('suspended: not taking new tasks');
  },
  resume: async (w) => {
    if (!w.isSuspended) return ok('not suspended');
    await w.resume();
    return ok('resumed');
  },
  shutdown: (w) => {
    // After the reply is on its way.
    setImmediate(() => w.requestShutdown());
    return ok('shutdown started');
  },
});
