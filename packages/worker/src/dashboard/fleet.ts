/**
 * The fleet monitor: everything the dashboard learns by watching the broker.
 * It listens to `celeryev` and feeds the history in batches; keeps the
 * workers' state from events and periodic control broadcasts; asks every
 * worker to send events (as Flower does, so workers started without `-E`
 * report); samples queue depths; polls the result backend for tasks whose
 * final event was missed; applies retention; and pushes live events to the
 * pages. A broker outage never stops it: the status says why, history stays
 * readable, and the next successful sample reconnects the event feed.
 */
import { redactUrl, type CeleriacApp, type CeleryEvent } from '@celeriac/core/spi';
import { listenAllEvents, secretScrubber, withTimeout } from './feed.js';
import type { BrokerStatus, HistoryStore, LiveEvent, RetentionPolicy, TaskState, WorkerView } from './model.js';
import { QueueSampler } from './queues.js';
import { ResultPoller } from './results.js';
import { mergeReplies, WorkerTracker } from './workers.js';
import { appQueues } from '../cli/ops.js';

/** How often each loop runs, ms. Tests and small fleets are fine with the defaults. */
export interface FleetIntervals {
  readonly flush: number;
  readonly control: number;
  readonly queues: number;
  readonly backend: number;
  readonly enableEvents: number;
  readonly retention: number;
  /** How long a control broadcast collects replies. */
  readonly replyTimeout: number;
  /** How long any one broker call may take before the broker is called unreachable. */
  readonly brokerTimeout: number;
}

export const DEFAULT_INTERVALS: FleetIntervals = {
  flush: 200, control: 4000, queues: 3000, backend: 5000, enableEvents: 10_000, retention: 60_000, replyTimeout: 1000, brokerTimeout: 5000,
};

export interface FleetOptions {
  readonly app: CeleriacApp;
  readonly history: HistoryStore;
  readonly retention: RetentionPolicy;
  readonly intervals?: Partial<FleetIntervals>;
  /** One line about trouble the operator should know of (history writes failing, ...). */
  readonly log?: (line: string) => void;
}

const EVENT_STATES: Readonly<Record<string, TaskState>> = {
  'task-sent': 'SENT', 'task-received': 'RECEIVED', 'task-started': 'STARTED', 'task-retried': 'RETRY',
  'task-succeeded': 'SUCCESS', 'task-failed': 'FAILURE', 'task-revoked': 'REVOKED', 'task-rejected': 'REJECTED',
};
/** Events buffered for the history at most; past it (the history far behind), the oldest are dropped and said so. */
const MAX_BUFFER = 50_000;
/** A worker that answers control but sends no heartbeat is asked for events again after this long. */
const SILENT_RETRY_MS = 15_000;

export class FleetMonitor {
  readonly workers: WorkerTracker;
  readonly queueSampler = new QueueSampler();
  private readonly intervals: FleetIntervals;
  private readonly log: (line: string) => void;
  private status: BrokerStatus;
  private readonly subscribers = new Set<(event: LiveEvent) => void>();
  private unlisten: (() => Promise<void>) | null = null;
  private buffer: CeleryEvent[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** One-off timers (enable_events for a worker just online). */
  private readonly soon = new Set<NodeJS.Timeout>();
  private readonly running = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly workerStates = new Map<string, WorkerView['state']>();
  private readonly results: ResultPoller;
  private registeredAt = 0;
  private readonly enabledAt = new Map<string, number>();
  private readonly warned = new Map<string, number>();
  /** Queues known to exist broker-side (a worker consumed them). */
  private readonly existingQueues = new Set<string>();
  private closed = false;
  private readonly scrub: (text: string) => string;

  constructor(private readonly options: FleetOptions) {
    this.intervals = { ...DEFAULT_INTERVALS, ...options.intervals };
    this.workers = new WorkerTracker(this.intervals.control);
    this.log = options.log ?? ((line) => process.stderr.write(`dashboard: ${line}\n`));
    const broker = options.app.config.broker;
    this.scrub = secretScrubber(options.app);
    this.status = { url: redactUrl(broker.redacted), reachable: false, error: 'not connected yet', since: Date.now() };
    this.results = new ResultPoller(options.app, options.history, (p, what) => withTimeout(p, this.intervals.brokerTimeout, what));
  }

  private get app(): CeleriacApp {
    return this.options.app;
  }

  /** Connect (bounded: a broker that is down does not hold the dashboard up) and start every loop. */
  async start(): Promise<void> {
    await this.probe();
    this.every('flush', this.intervals.flush, () => this.flush());
    this.every('queues', this.intervals.queues, () => this.probe());
    this.every('control', this.intervals.control, () => this.controlRound());
    this.every('backend', this.intervals.backend, () => this.pollBackend());
    this.every('enableEvents', this.intervals.enableEvents, () => this.enableEvents());
    this.every('retention', this.intervals.retention, () => this.prune());
    // Offline is a matter of time passing: look every second, so pages see it live.
    this.every('states', 1000, async () => this.checkWorkerStates());
    this.track(this.prune());
    if (this.status.reachable) this.track(this.controlRound());
  }

  broker(): BrokerStatus {
    return this.status;
  }

  subscribe(onEvent: (event: LiveEvent) => void): () => void {
    this.subscribers.add(onEvent);
    return () => this.subscribers.delete(onEvent);
  }

  private emit(event: LiveEvent): void {
    for (const fn of this.subscribers) {
      try {
        fn(event);
      } catch {
        // One broken subscriber (a closed stream) must not starve the others.
      }
    }
  }

  /** Run `fn` every `ms`, never two at once; its failure is logged, never thrown. */
  private every(name: string, ms: number, fn: () => Promise<void>): void {
    const timer = setInterval(() => {
      if (this.running.has(name) || this.closed) return;
      this.running.add(name);
      this.track(fn().finally(() => this.running.delete(name)));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** Keep a background promise observed, and known to close(). */
  private track(p: Promise<unknown>): void {
    const observed = p.catch((err: unknown) => this.warn(this.scrub(err instanceof Error ? err.message : String(err))));
    this.pending.add(observed);
    void observed.finally(() => this.pending.delete(observed));
  }

  /** Log a background failure, the same text at most once a minute (an outage would repeat it every few seconds). */
  private warn(line: string): void {
    const now = Date.now();
    if (now - (this.warned.get(line) ?? 0) < 60_000) return;
    if (this.warned.size > 100) this.warned.clear();
    this.warned.set(line, now);
    this.log(line);
  }

  private setReachable(reachable: boolean, error: string | null): void {
    const was = this.status;
    if (was.reachable === reachable && (reachable || was.error === error)) return;
    this.status = { url: was.url, reachable, error: error === null ? null : this.scrub(error), since: reachable === was.reachable ? was.since : Date.now() };
    this.emit({ kind: 'broker', status: this.status });
    if (!reachable && was.reachable) this.log(`broker unreachable: ${this.status.error}`);
    if (reachable && !was.reachable) this.log('broker reachable');
  }

  /**
   * The health probe: sample the queues. Success after a failure (or at start)
   * opens the event feed again and asks the workers for events.
   */
  private async probe(): Promise<void> {
    const t = this.intervals.brokerTimeout;
    try {
      const transport = await withTimeout(this.app.transport(), t, 'connecting to the broker');
      const consumed = this.workers.consumedQueues();
      for (const q of consumed) this.existingQueues.add(q);
      const names = [...new Set([...appQueues(this.app), ...consumed])];
      // RabbitMQ: asking the length of a queue that does not exist closes the channel, and the
      // transport's recovery loses events in flight; only queues a worker consumed (so declared) are asked.
      const measurable = transport.kind === 'amqp' ? (q: string) => this.existingQueues.has(q) : undefined;
      const view = await withTimeout(this.queueSampler.sample(transport, names, (q) => this.workers.unacked(q), measurable), t, 'sampling the queues');
      if (!this.status.reachable) await this.connected();
      this.setReachable(true, null);
      this.emit({ kind: 'queues', view });
    } catch (err) {
      this.setReachable(false, err instanceof Error ? err.message : String(err));
    }
  }

  /** The broker is (back) up: listen afresh (a feed from before the outage may be gone) and wake the workers' events. */
  private async connected(): Promise<void> {
    const t = this.intervals.brokerTimeout;
    const old = this.unlisten;
    this.unlisten = null;
    if (old) await withTimeout(old(), t, 'closing the old event feed').catch(() => undefined);
    const transport = await this.app.transport();
    this.unlisten = await withTimeout(listenAllEvents(transport, (e) => this.onEvent(e)), t, 'listening to events');
    await this.enableEvents();
    // Celery's receivers ask for a heartbeat when they start, so workers show at once.
    await withTimeout(this.app.control.broadcast('heartbeat', {}, { reply: false }), t, 'asking for heartbeats');
  }

  private onEvent(event: CeleryEvent): void {
    if (this.closed) return;
    if (event.type.startsWith('task-')) {
      if (this.buffer.length >= MAX_BUFFER) {
        this.buffer.splice(0, MAX_BUFFER / 10);
        this.warn(`history: more than ${MAX_BUFFER} events waiting to be stored; the oldest were dropped`);
      }
      this.buffer.push(event);
    }
    this.workers.onEvent(event);
    // A worker that just started (a Python one without -E sends worker events only): ask it for task events
    // soon. Not at once: a Python worker announces itself before its remote-control consumer is up.
    if (event.type === 'worker-online' && typeof event.hostname === 'string') {
      const hostname = event.hostname;
      this.enabledAt.set(hostname, Date.now());
      for (const delay of [1000, 3000]) {
        const timer = setTimeout(() => {
          this.soon.delete(timer);
          if (this.closed || !this.status.reachable) return;
          this.track(withTimeout(this.app.control.broadcast('enable_events', {}, { reply: false, destination: [hostname] }), this.intervals.brokerTimeout, 'enable_events'));
        }, delay);
        timer.unref();
        this.soon.add(timer);
      }
    }
  }

  /** Hand the buffered events to the history in one batch, then tell the pages what changed. */
  private async flush(): Promise<void> {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    try {
      await this.options.history.ingest(batch);
    } catch (err) {
      this.log(`history: ${batch.length} event(s) not stored: ${(err as Error).message}`);
      return;
    }
    // One live event per task per batch: its latest state.
    const latest = new Map<string, { name: string | null; state: TaskState }>();
    for (const e of batch) {
      const id = typeof e.uuid === 'string' ? e.uuid : null;
      const state = EVENT_STATES[e.type];
      if (!id || !state) continue;
      latest.set(id, { name: typeof e.name === 'string' ? e.name : (latest.get(id)?.name ?? null), state });
    }
    for (const [id, { name, state }] of latest) this.emit({ kind: 'task', id, name, state });
    this.checkWorkerStates();
  }

  private checkWorkerStates(): void {
    for (const hostname of this.workers.hostnames()) {
      const state = this.workers.state(hostname);
      if (!state || this.workerStates.get(hostname) === state) continue;
      this.workerStates.set(hostname, state);
      this.emit({ kind: 'worker', hostname, state });
    }
  }

  /** Flower's trick: workers started without -E send events once asked. Fire and forget. */
  private async enableEvents(): Promise<void> {
    if (!this.status.reachable && this.unlisten === null) return;
    await withTimeout(this.app.control.broadcast('enable_events', {}, { reply: false }), this.intervals.brokerTimeout, 'enable_events');
  }

  /** Ask every worker what it is doing; registered tasks only now and then (they rarely change). */
  async controlRound(): Promise<void> {
    if (!this.status.reachable) return;
    const c = this.app.control;
    const opts = { timeout: this.intervals.replyTimeout };
    const wantRegistered = Date.now() - this.registeredAt > 30_000 || this.workers.needsRegistered();
    const [stats, activeQueues, active, reserved, registered] = await withTimeout(
      Promise.all([
        c.broadcast('stats', {}, opts),
        c.broadcast('active_queues', {}, opts),
        c.broadcast('active', {}, opts),
        c.broadcast('reserved', {}, opts),
        wantRegistered ? c.broadcast('registered', {}, opts) : Promise.resolve(null),
      ]),
      this.intervals.replyTimeout + this.intervals.brokerTimeout,
      'control broadcast',
    );
    if (registered) this.registeredAt = Date.now();
    this.workers.onControlRound({
      stats: mergeReplies(stats), activeQueues: mergeReplies(activeQueues), active: mergeReplies(active), reserved: mergeReplies(reserved),
      registered: registered ? mergeReplies(registered) : null,
    });
    this.checkWorkerStates();
    // A worker started since the last enable_events, without -E: ask it now rather than at the next periodic round.
    const now = Date.now();
    const silent = this.workers.silent().filter((h) => now - (this.enabledAt.get(h) ?? 0) > SILENT_RETRY_MS);
    if (silent.length) {
      for (const h of silent) this.enabledAt.set(h, now);
      await withTimeout(c.broadcast('enable_events', {}, { reply: false, destination: silent }), this.intervals.brokerTimeout, 'enable_events');
    }
  }

  /** Settle tasks whose final event was missed, from the result backend (results.ts), and tell the pages. */
  private async pollBackend(): Promise<void> {
    for (const t of await this.results.poll()) this.emit({ kind: 'task', ...t });
  }

  private async prune(): Promise<void> {
    const removed = await this.options.history.prune(this.options.retention);
    if (removed > 0) this.log(`retention: ${removed} old task(s) removed from the history`);
  }

  /** Stop every loop, flush what was received, close the event feed (the app and history are the caller's). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.soon) clearTimeout(t);
    await Promise.all([...this.pending]);
    if (this.buffer.length) await this.options.history.ingest(this.buffer.splice(0)).catch(() => undefined);
    const unlisten = this.unlisten;
    this.unlisten = null;
    if (unlisten) await withTimeout(unlisten(), 2000, 'closing the event feed').catch(() => undefined);
    this.subscribers.clear();
  }
}
