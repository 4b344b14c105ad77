import { hostname as osHostname } from 'node:os';
import { CapabilityError, ConfigError, ErrorCodes, EventDispatcher, type CeleriacApp, type Consumer, type Delivery, type ResultBackend, type Transport } from '@celeriac/core/spi';
import { WorkerEvents } from './events.js';
import { createLogger, type Logger } from './logger.js';
import { AsyncPool } from './pools/async.js';
import type { Pool } from './pools/pool.js';
import { traceDelivery, type TraceDeps } from './trace/index.js';
import { checkFleetLimits } from './trace/fleet.js';
import { checkFailedRegistry } from './trace/failed.js';
import { readSwitches, SwitchWatcher, type FleetSwitches } from './switches.js';
import type { RateLimiter } from './rate-limit.js';
import { ControlNode } from './control/node.js';
import type { ControlledWorker } from './control/controlled.js';
import { Interrupt, WorkerState, type RunningTask, type RunTimeLimits } from './state.js';
import { persist } from './persist.js';
import { TaskEventPublisher } from './control/task-events.js';

/**
 * Celery's node-name variables: `%h` the host name with its domain, `%n` the name alone, `%d` the domain,
 * `%%` a percent sign — so `-n worker1@%h` names one node per machine, as with Celery's `-n`.
 */
export function expandNodeName(pattern: string, host: string = osHostname()): string {
  const dot = host.indexOf('.');
  const name = dot < 0 ? host : host.slice(0, dot);
  const domain = dot < 0 ? '' : host.slice(dot + 1);
  return pattern.replace(/%([hnd%])/g, (_, v: string) => (v === 'h' ? host : v === 'n' ? name : v === 'd' ? domain : '%'));
}

/**
 * Whether a worker receives work now (`inspect stats` → `celeriac.consumer`, `celeriac status`):
 * `consuming`; `connecting` (no connection to the broker; it re-attaches once one is back); `failing`
 * (connected, but attaching to its queues fails — `error` says why — and is retried with backoff);
 * `suspended`; `paused` (every one of its queues is paused fleet-wide: `celeriac pause`); `stopped`.
 */
export interface ConsumerHealth {
  readonly state: 'consuming' | 'connecting' | 'failing' | 'suspended' | 'paused' | 'stopped';
  /** When it entered this state (epoch ms). */
  readonly since: number;
  readonly error?: string;
}

/** A consumer that reports its state (the AMQP one); others are taken as consuming while they exist. */
type ReportedState = { readonly state: ConsumerHealth['state'] | 'cancelled'; readonly since: number; readonly error?: string };
interface ReportingConsumer extends Consumer {
  status(): ReportedState;
  onStatus(listener: (status: ReportedState) => void): () => void;
}
const reports = (c: Consumer | undefined): c is ReportingConsumer => typeof (c as Partial<ReportingConsumer> | undefined)?.status === 'function';

/** How often a worker re-reads revocations from the backend (broadcasts reach it sooner). */
const REVOKED_REFRESH_MS = 1000;

export interface WorkerOptions {
  /** Queues to consume, in priority order when several have messages. Default: the app's default queue. */
  readonly queues?: readonly string[];
  /** Tasks run at once. Default 10 for the async pool. */
  readonly concurrency?: number;
  /** Unacknowledged messages held at once. Default: equal to concurrency (never more than free slots + 0). */
  readonly prefetch?: number;
  /** Node name, `celeriac@<host>` by default (Celery's `-n`). */
  readonly hostname?: string;
  readonly pool?: Pool;
  readonly logger?: Logger;
  readonly logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Send task and worker events on `celeryev` from the start (Celery's `-E`); `enable_events` turns them on later. */
  readonly sendEvents?: boolean;
  /** Called when remote control asks this worker to shut down (the CLI runs its warm shutdown). */
  readonly onShutdownRequest?: () => void;
}

/**
 * A worker: consumes queues, runs each message through the trace pipeline (`trace/`)
 * on a pool, and acknowledges after the outcome is stored. Answers remote
 * control on the pidbox and, when enabled, sends Celery's events.
 */
export class Worker implements ControlledWorker {
  readonly hostname: string;
  readonly events = new WorkerEvents();
  readonly log: Logger;
  readonly startedAt = Date.now();
  private queueList: string[];
  private slots: number;
  private prefetch: number;
  readonly pool: Pool;
  private consumer: Consumer | undefined;
  private readonly buffer: Delivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** What this worker knows while it runs (running tasks, revocations, limits, counts); control reads it. */
  readonly state = new WorkerState();
  private control: ControlNode | undefined;
  private dispatcher: EventDispatcher | undefined;
  private taskEvents: TaskEventPublisher | undefined;
  private deps: TraceDeps | undefined;
  private transportRef: Transport | undefined;
  private stopping = false;
  private suspended = false;
  private revokedTimer: NodeJS.Timeout | undefined;
  /** Queues paused fleet-wide (`celeriac pause`): still this worker's, not consumed until resumed. */
  private paused = new Set<string>();
  private switchWatcher: SwitchWatcher | undefined;
  /** Aborted by a cold shutdown: outcome steps still retrying against an absent broker give up. */
  private readonly halt = new AbortController();
  /** When refreshing revocations began to fail (0: it works), and when that was last logged. */
  private revokedFailingSince = 0;
  private revokedReportedAt = 0;
  /** Unstarted deliveries being given back by a warm shutdown (never reject). */
  private returning: Promise<void>[] = [];

  constructor(
    readonly app: CeleriacApp,
    private readonly options: WorkerOptions = {},
  ) {
    this.queueList = options.queues?.length ? [...options.queues] : [app.config.defaultQueue];
    this.slots = options.concurrency ?? 10;
    this.prefetch = options.prefetch ?? this.slots;
    this.hostname = expandNodeName(options.hostname ?? 'celeriac@%h');
    this.pool = options.pool ?? new AsyncPool();
    this.log = options.logger ?? createLogger(options.logLevel ?? 'info');
    app.watchResultsOnSend = false;
    if (!Number.isInteger(this.slots) || this.slots < 1) throw new ConfigError(`concurrency must be a positive integer (got ${String(this.slots)})`, { concurrency: this.slots });
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) throw new ConfigError(`prefetch must be a positive integer (got ${String(this.prefetch)})`, { prefetch: this.prefetch });
  }

  /** Refuse, before consuming anything, a task setup this pool cannot enforce. */
  private checkCapabilities(): void {
    if (this.pool.capabilities.hardTimeLimit) return;
    const withHard = this.app.registry.names().filter((n) => this.app.registry.get(n)?.options.timeLimit !== undefined);
    if (withHard.length > 0) {
      throw new CapabilityError(
        `The ${this.pool.kind} pool cannot enforce a hard timeLimit (tasks: ${withHard.join(', ')}); use the process pool or softTimeLimit`,
        { pool: this.pool.kind, tasks: withHard },
      );
    }
  }

  /** A broker that may drop accepted work (Redis evicting, or not persisting) is refused unless the app allows it. */
  private async checkBrokerSafety(transport: Transport): Promise<void> {
    const problems = (await transport.unsafeSettings?.()) ?? [];
    if (problems.length === 0) return;
    if (!this.app.config.allowUnsafeBroker) {
      throw new ConfigError(`${problems.join('; ')}. Fix the broker's settings, or set allowUnsafeBroker: true to run anyway`, { problems }, ErrorCodes.UNSAFE_REDIS_CONFIG);
    }
    for (const problem of problems) this.log.warn({ code: ErrorCodes.UNSAFE_REDIS_CONFIG }, `${problem} (allowed by allowUnsafeBroker)`);
  }

  async start(): Promise<void> {
    this.checkCapabilities();
    await this.pool.start?.();
    const [transport, backend] = await Promise.all([this.app.transport(), this.app.backend()]);
    await this.checkBrokerSafety(transport);
    checkFleetLimits(this.app.registry.names().map((n) => this.app.registry.get(n)!), backend, transport);
    checkFailedRegistry(this.app.config.failedTasks.keep, backend);
    this.transportRef = transport;
    this.deps = {
      app: this.app,
      transport,
      backend,
      pool: this.pool,
      log: this.log,
      events: this.events,
      state: this.state,
      hostname: this.hostname,
      halt: this.halt.signal,
    };
    this.dispatcher = new EventDispatcher(() => this.app.transport(), this.hostname, this.app.clock);
    this.taskEvents = new TaskEventPublisher(this, this.dispatcher);
    if (transport.capabilities.fanout) {
      this.control = new ControlNode(this, transport);
      await this.control.start();
    }
    // Revocations live in the backend; this worker keeps a copy, refreshed every second and added to by broadcasts.
    await this.refreshRevoked(backend);
    this.revokedTimer = setInterval(() => void this.refreshRevoked(backend), REVOKED_REFRESH_MS);
    const switches = await readSwitches(backend);
    if (switches) this.applyStartSwitches(switches, backend);
    if (!this.suspended && this.activeQueues().length > 0) this.consumer = await this.consume(transport);
    this.log.info({ hostname: this.hostname, queues: this.queueList, concurrency: this.slots, transport: transport.kind }, 'worker ready');
    this.events.emit('worker-online', { hostname: this.hostname });
    if (this.options.sendEvents) this.setEvents(true);
  }

  /** `celeriac suspend` / `pause` in effect when this worker starts; then follow them as they are turned. */
  private applyStartSwitches(switches: FleetSwitches, backend: ResultBackend): void {
    this.paused = new Set(switches.pausedQueues);
    if (switches.suspended) {
      this.suspended = true;
      this.log.warn({ hostname: this.hostname }, 'worker starts suspended: `celeriac suspend` is in effect fleet-wide (`celeriac resume` lifts it)');
    }
    if (this.paused.size > 0) this.log.warn({ paused: [...this.paused] }, 'queues paused fleet-wide are not consumed until `celeriac resume <queue>`');
    this.switchWatcher = new SwitchWatcher(backend, switches, (now, before) => this.followSwitches(now, before), this.log);
    this.switchWatcher.start();
  }

  private async followSwitches(now: FleetSwitches, before: FleetSwitches): Promise<void> {
    if (this.stopping) return;
    if (now.suspended !== before.suspended) await (now.suspended ? this.suspend() : this.resume());
    if (now.pausedQueues.join('\0') !== before.pausedQueues.join('\0')) {
      this.paused = new Set(now.pausedQueues);
      this.log.info({ paused: now.pausedQueues }, 'fleet-wide paused queues changed');
      if (!this.suspended) await this.reconsume();
    }
  }

  /** Queues this worker takes tasks from now: its queues minus those paused fleet-wide. */
  private activeQueues(): string[] {
    return this.paused.size === 0 ? this.queueList : this.queueList.filter((q) => !this.paused.has(q));
  }

  /** Its queues paused fleet-wide (`celeriac pause`). */
  get pausedQueues(): readonly string[] {
    return this.queueList.filter((q) => this.paused.has(q));
  }

  /** Queues consumed now. */
  get queues(): readonly string[] {
    return this.queueList;
  }

  /** Tasks run at once now. */
  get concurrency(): number {
    return this.slots;
  }

  get prefetchCount(): number {
    return this.prefetch;
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  /** When this worker last sent a worker-heartbeat event (null: events off, or none yet). */
  get lastHeartbeatAt(): number | null {
    return this.eventsEnabled ? (this.taskEvents?.lastHeartbeatAt ?? null) : null;
  }

  get eventsEnabled(): boolean {
    return this.dispatcher?.enabled ?? false;
  }

  /** Messages received and not yet started (`inspect reserved`). */
  get reserved(): readonly Delivery[] {
    return this.buffer;
  }

  /** Ids this worker treats as revoked (`inspect revoked`). */
  get revokedIds(): readonly string[] {
    return this.state.revoked;
  }

  /** Running tasks by id (`inspect active`). */
  get running(): ReadonlyMap<string, RunningTask> {
    return this.state.running;
  }

  get rateLimiter(): RateLimiter {
    return this.state.rateLimiter;
  }

  /** Time limits set at run time (`time_limit`). */
  get timeLimits(): ReadonlyMap<string, RunTimeLimits> {
    return this.state.timeLimits;
  }

  /** Tasks accepted by name (Celery's `stats.total`). */
  get totals(): ReadonlyMap<string, number> {
    return this.state.totals;
  }

  get transport(): Transport | undefined {
    return this.transportRef;
  }

  private onDelivery(delivery: Delivery): void {
    if (this.stopping || this.suspended) {
      void this.giveBack(delivery);
      return;
    }
    this.buffer.push(delivery);
    this.drain();
  }

  /** Start buffered deliveries while slots are free. */
  private drain(): void {
    while (!this.stopping && this.inFlight.size < this.slots && this.buffer.length > 0) {
      const delivery = this.buffer.shift()!;
      this.state.countAccepted(delivery.message.headers.task);
      const run = traceDelivery(this.deps!, delivery).finally(() => {
        this.inFlight.delete(run);
        this.drain();
      });
      this.inFlight.add(run);
    }
  }

  /**
   * Return an unstarted delivery to its queue, retried while the broker is away (a failed return
   * would leave it held, and renewed, by this worker for good). Never rejects.
   */
  private async giveBack(delivery: Delivery): Promise<void> {
    try {
      await persist(() => delivery.reject({ requeue: true }), { log: this.log, halt: this.halt.signal, what: 'return an unstarted message to its queue' });
    } catch (err) {
      this.log.warn({ err }, 'could not return an unstarted message; it comes back after the visibility window');
    }
  }

  private async refreshRevoked(backend: ResultBackend): Promise<void> {
    try {
      // Expired revocations drop out; ids heard by broadcast stay for their TTL even if the backend write lags.
      this.state.replaceRevoked(await backend.revokedIds(), this.app.config.revokeExpires);
      this.revokedFailingSince = 0;
    } catch (err) {
      // Once when it starts failing, then every 10 s: an outage must not write a line a second.
      const now = Date.now();
      if (!this.revokedFailingSince || now - this.revokedReportedAt >= 10_000) {
        this.revokedFailingSince ||= now;
        this.revokedReportedAt = now;
        this.log.warn({ err, failingForMs: now - this.revokedFailingSince }, 'could not refresh revocations from the result backend; retrying');
      }
    }
  }

  /** Flag ids as revoked (as heard by broadcast); with `terminate`, abort those running here. Returns the ids terminated. */
  revoke(ids: readonly string[], terminate: boolean): string[] {
    return this.state.revoke(ids, terminate);
  }

  /** Change the number of tasks run at once (`pool_grow` / `pool_shrink`); the prefetch bound follows. */
  async resize(concurrency: number): Promise<void> {
    const next = Math.max(1, Math.floor(concurrency));
    const delta = next - this.slots;
    this.slots = next;
    this.prefetch = Math.max(1, this.prefetch + delta);
    await this.pool.resize?.(next);
    this.consumer?.setPrefetch(this.prefetch);
    this.drain();
  }

  /** Consume `queues` from now on (`add_consumer` / `cancel_consumer`); deliveries held stay owned. */
  async setQueues(queues: readonly string[]): Promise<void> {
    this.queueList = [...queues];
    if (this.suspended || this.stopping) return;
    await this.reconsume();
  }

  private async reconsume(): Promise<void> {
    const old = this.consumer;
    this.consumer = undefined;
    await old?.cancel();
    if (this.activeQueues().length > 0 && this.transportRef) {
      this.consumer = await this.consume(this.transportRef);
    }
  }

  /**
   * Consume this worker's queues, logging every change of the consumer's state: a worker that
   * cannot consume says so (a warning when it stops, info when it is back), not just once.
   */
  private async consume(transport: Transport): Promise<Consumer> {
    const consumer = await transport.consume(this.activeQueues(), (d) => this.onDelivery(d), { prefetch: this.prefetch });
    if (reports(consumer)) {
      let was = consumer.status().state;
      consumer.onStatus((s) => {
        if (this.consumer !== consumer || s.state === 'cancelled') return;
        if (s.state === 'consuming') {
          if (was !== 'consuming') this.log.info({ queues: this.queueList, afterMs: Date.now() - this.healthSince }, 'consuming again');
        } else if (s.state === 'failing') {
          this.log.warn({ code: ErrorCodes.BROKER_UNAVAILABLE, queues: this.queueList, error: s.error }, 'not consuming: attaching to the queues failed; retrying with backoff');
        } else {
          this.log.warn({ code: ErrorCodes.BROKER_UNAVAILABLE, queues: this.queueList }, 'not consuming: no connection to the broker; reconnecting');
        }
        if (s.state !== was) this.healthSince = s.since;
        was = s.state;
      });
    }
    return consumer;
  }

  private healthSince = Date.now();

  /** Whether this worker receives work now (see {@link ConsumerHealth}). */
  get consumerHealth(): ConsumerHealth {
    if (this.stopping) return { state: 'stopped', since: this.healthSince };
    if (this.suspended) return { state: 'suspended', since: this.healthSince };
    const c = this.consumer;
    if (reports(c)) {
      const s = c.status();
      if (s.state !== 'cancelled') return { ...s, state: s.state };
    }
    if (!c && this.queueList.length > 0 && this.activeQueues().length === 0) return { state: 'paused', since: this.healthSince };
    // No consumer while running: every queue was cancelled (`cancel_consumer`), or it is being replaced.
    return { state: c || this.queueList.length > 0 ? 'consuming' : 'stopped', since: this.healthSince };
  }

  /** Stop taking new work (running tasks finish; unstarted messages go back) until {@link resume}. */
  async suspend(): Promise<void> {
    if (this.suspended) return;
    this.suspended = true;
    const old = this.consumer;
    this.consumer = undefined;
    await old?.cancel();
    await Promise.all(this.buffer.splice(0).map((d) => this.giveBack(d)));
    this.log.info({ hostname: this.hostname }, 'worker suspended: not taking new tasks');
  }

  async resume(): Promise<void> {
    if (!this.suspended || this.stopping) return;
    this.suspended = false;
    await this.reconsume();
    this.log.info({ hostname: this.hostname }, 'worker resumed');
  }

  /** Turn Celery events on or off (`-E`, `enable_events`, `disable_events`). Returns whether it changed. */
  setEvents(enabled: boolean): boolean {
    if (!this.taskEvents || this.eventsEnabled === enabled) return false;
    if (enabled) this.taskEvents.start();
    else this.taskEvents.stop();
    return true;
  }

  /** Send a `worker-heartbeat` now (when events are on): event receivers ask for one when they start. */
  emitHeartbeat(): void {
    if (this.eventsEnabled) this.taskEvents?.heartbeat();
  }

  /** Remote control asked for a shutdown: the process's owner decides how (the CLI: warm shutdown). */
  requestShutdown(): void {
    this.log.warn({ hostname: this.hostname }, 'shutdown requested by remote control');
    if (this.options.onShutdownRequest) this.options.onShutdownRequest();
    else void this.stop();
  }

  /**
   * Cold shutdown: abort every running task and give its message back to the
   * queue (a task that ignores its signal is returned when the connection closes).
   */
  async cold(): Promise<void> {
    this.stopping = true;
    clearInterval(this.revokedTimer);
    this.switchWatcher?.stop();
    // First: nothing may wait on an absent broker from here on (each step is tried once more at most).
    this.halt.abort();
    await this.consumer?.cancel();
    await Promise.all([...this.returning, ...this.buffer.splice(0).map((d) => this.giveBack(d))]);
    for (const task of this.state.running.values()) task.controller.abort(new Interrupt('shutdown'));
    await this.pool.interruptAll?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(this.inFlight), new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
  }

  /**
   * Warm shutdown: stop consuming, return unstarted messages, let running tasks
   * finish for up to `timeoutMs`; then cold: abort what still runs and return
   * it to the queue. Nothing is lost either way.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.consumer?.cancel();
    clearInterval(this.revokedTimer);
    this.switchWatcher?.stop();
    // Returned meanwhile, within the drain's time: with the broker away they retry until it ends.
    this.returning = this.buffer.splice(0).map((d) => this.giveBack(d));
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.all([Promise.allSettled(this.inFlight), ...this.returning]).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.log.warn({ running: this.state.running.size }, 'drain timeout: aborting running tasks; they return to the queue');
      await this.cold();
    }
    await this.pool.close();
    // Remote control answers until the end of the drain (an operator can still inspect a stopping worker).
    await this.control?.stop();
    await this.taskEvents?.close();
    this.events.emit('worker-offline', { hostname: this.hostname });
    this.log.info({ hostname: this.hostname }, 'worker stopped');
  }
}
