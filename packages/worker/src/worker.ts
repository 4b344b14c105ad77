import { hostname as osHostname } from 'node:os';
import { CapabilityError, type CeleriacApp, type Consumer, type Delivery, type ResultBackend } from '@celeriac/core';

/** How often a worker re-reads revocations from the backend (broadcasts reach it sooner). */
const REVOKED_REFRESH_MS = 1000;
import { WorkerEvents } from './events.js';
import { createLogger, type Logger } from './logger.js';
import { AsyncPool } from './pools/async.js';
import type { Pool } from './pools/pool.js';
import { Interrupt, traceDelivery, type TraceDeps } from './trace.js';
import { RateLimiter } from './rate-limit.js';
import type { LazyAbort } from './lazy-abort.js';

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
}

/**
 * A worker: consumes queues, runs each message through {@link traceDelivery}
 * on a pool, and acknowledges after the outcome is stored.
 */
export class Worker {
  readonly hostname: string;
  readonly events = new WorkerEvents();
  readonly log: Logger;
  private readonly queues: readonly string[];
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly pool: Pool;
  private consumer: Consumer | undefined;
  private readonly buffer: Delivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly revoked = new Set<string>();
  /** Revocations heard by broadcast, with when. */
  private readonly heardRevoked = new Map<string, number>();
  private readonly running = new Map<string, LazyAbort>();
  readonly rateLimiter = new RateLimiter();
  private unsubscribe: (() => Promise<void>) | undefined;
  private deps: TraceDeps | undefined;
  private stopping = false;
  private revokedTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly app: CeleriacApp,
    options: WorkerOptions = {},
  ) {
    this.queues = options.queues?.length ? [...options.queues] : [app.config.defaultQueue];
    this.concurrency = options.concurrency ?? 10;
    this.prefetch = options.prefetch ?? this.concurrency;
    this.hostname = options.hostname ?? `celeriac@${osHostname()}`;
    this.pool = options.pool ?? new AsyncPool();
    this.log = options.logger ?? createLogger(options.logLevel ?? 'info');
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) throw new RangeError('prefetch must be a positive integer');
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

  async start(): Promise<void> {
    this.checkCapabilities();
    await this.pool.start?.();
    const [transport, backend] = await Promise.all([this.app.transport(), this.app.backend()]);
    this.deps = {
      app: this.app,
      transport,
      backend,
      pool: this.pool,
      log: this.log,
      events: this.events,
      revoked: this.revoked,
      running: this.running,
      rateLimiter: this.rateLimiter,
      unknownTasks: new Map(),
    };
    if (transport.capabilities.fanout) {
      this.unsubscribe = await transport.subscribe('celery.pidbox', (payload) => this.onControl(payload));
    }
    // Revocations live in the backend; this worker keeps a copy, refreshed every second and added to by broadcasts.
    await this.refreshRevoked(backend);
    this.revokedTimer = setInterval(() => void this.refreshRevoked(backend), REVOKED_REFRESH_MS);
    this.consumer = await transport.consume(this.queues, (d) => this.onDelivery(d), { prefetch: this.prefetch });
    this.log.info({ hostname: this.hostname, queues: this.queues, concurrency: this.concurrency, transport: transport.kind }, 'worker ready');
    this.events.emit('worker-online', { hostname: this.hostname });
  }

  private onDelivery(delivery: Delivery): void {
    if (this.stopping) {
      void delivery.reject({ requeue: true });
      return;
    }
    this.buffer.push(delivery);
    this.drain();
  }

  /** Start buffered deliveries while slots are free. */
  private drain(): void {
    while (!this.stopping && this.inFlight.size < this.concurrency && this.buffer.length > 0) {
      const delivery = this.buffer.shift()!;
      const run = traceDelivery(this.deps!, delivery).finally(() => {
        this.inFlight.delete(run);
        this.drain();
      });
      this.inFlight.add(run);
    }
  }

  private async refreshRevoked(backend: ResultBackend): Promise<void> {
    try {
      const ids = await backend.revokedIds();
      // Expired revocations drop out; ids heard by broadcast stay for their TTL even if the backend write lags.
      const horizon = Date.now() - this.app.config.revokeExpires;
      for (const [id, at] of this.heardRevoked) if (at < horizon) this.heardRevoked.delete(id);
      this.revoked.clear();
      for (const id of ids) this.revoked.add(id);
      for (const id of this.heardRevoked.keys()) this.revoked.add(id);
    } catch (err) {
      this.log.warn({ err }, 'could not refresh revocations from the result backend; retrying');
    }
  }

  /** Remote control over the broadcast channel (revoke, for now). */
  private onControl(payload: unknown): void {
    const p = payload as { method?: string; arguments?: { task_id?: string | string[]; terminate?: boolean } };
    if (p?.method !== 'revoke' || !p.arguments) return;
    const ids = Array.isArray(p.arguments.task_id) ? p.arguments.task_id : [p.arguments.task_id];
    for (const id of ids) {
      if (typeof id !== 'string') continue;
      this.revoked.add(id);
      this.heardRevoked.set(id, Date.now());
      if (p.arguments.terminate) this.running.get(id)?.abort(new Interrupt('terminate'));
    }
  }

  /**
   * Cold shutdown: abort every running task and give its message back to the
   * queue (a task that ignores its signal is returned when the connection closes).
   */
  async cold(): Promise<void> {
    this.stopping = true;
    clearInterval(this.revokedTimer);
    await this.consumer?.cancel();
    for (const delivery of this.buffer.splice(0)) await delivery.reject({ requeue: true });
    for (const controller of this.running.values()) controller.abort(new Interrupt('shutdown'));
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
    await this.unsubscribe?.();
    clearInterval(this.revokedTimer);
    for (const delivery of this.buffer.splice(0)) await delivery.reject({ requeue: true });
    const timeoutMs = options.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.allSettled(this.inFlight).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.log.warn({ running: this.running.size }, 'drain timeout: aborting running tasks; they return to the queue');
      await this.cold();
    }
    await this.pool.close();
    this.events.emit('worker-offline', { hostname: this.hostname });
    this.log.info({ hostname: this.hostname }, 'worker stopped');
  }
}
