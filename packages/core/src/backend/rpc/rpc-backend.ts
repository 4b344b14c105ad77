import type { Channel } from 'amqplib';
import { CapabilityError, ConfigError, TimeoutError } from '../../errors.js';
import { READY_STATES, type ResultMeta, type TaskState } from '../../protocol/schema.js';
import { AmqpSession, type AmqpSettings } from '../../drivers/amqp/session.js';
import type { BackendCapabilities, ChordPart, ResultBackend, StoreOptions, WaitOptions } from '../backend.js';

/** Celery's reply queue arguments: not durable, deleted when unused, and gone after a day without use. */
const REPLY_QUEUE_OPTIONS = { durable: false, autoDelete: true, exclusive: false, expires: 86_400_000 } as const;

export interface RpcBackendOptions {
  /**
   * How many task states this client holds at most (default
   * {@link RpcBackend.DEFAULT_MAX_HELD_STATES}, 8192). Every state that reaches the reply queue is
   * held, so that `get()`, `state()` or a late `wait()` can answer it; a client
   * that sends many tasks and never asks would otherwise grow without bound.
   * Beyond the bound the least recently heard or read state is dropped (LRU);
   * a task somebody is waiting on is answered as its state arrives, so the bound
   * never costs a waiter its result. A result dropped before anyone asked is gone
   * for this client (the reply was consumed): asking later waits as for a
   * result not yet in, as with Celery's rpc backend. A count, not a TTL, because
   * it bounds memory whatever the send rate; each state carries its result, so
   * with large results choose a smaller bound.
   */
  readonly maxHeldStates?: number;
}

const checkBound = (n: number): number => {
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`rpc:// maxHeldStates must be a positive integer, not ${String(n)}`, { maxHeldStates: n });
  return n;
};

/**
 * `rpc://`, as Celery 5 does it: each state is a message to the sender's reply
 * queue (the task message's `reply_to`, named after the client's id) with
 * `correlation_id` = task id and the body `{task_id, status, result, traceback,
 * children}`. Results reach only the client that sent the task, so this backend
 * has no chord join, no saved groups and no stored revocations — declared as
 * capabilities, and refused with a named error where a feature needs them.
 * The states heard are held in memory, at most
 * `maxHeldStates` of them (least recently used dropped first).
 */
export class RpcBackend implements ResultBackend {
  /**
   * Default of `maxHeldStates`: Celery's `MESSAGE_BUFFER_MAX`,
   * the bound of the buffer in which its rpc backend keeps states that arrived for
   * results nobody was waiting on (oldest dropped first).
   */
  static readonly DEFAULT_MAX_HELD_STATES = 8192;
  readonly kind = 'rpc';
  readonly capabilities: BackendCapabilities = Object.freeze({
    push: true,
    durable: false,
    crossProcess: true,
    chords: false,
    revocations: false,
    savedGroups: false,
    sharedResults: false,
  });
  /**
   * Latest state heard per task id (a ready state is final), least recently
   * heard or read first: a state heard or read again moves to the end, and the
   * first ones go when there are more than {@link RpcBackend.maxHeldStates}.
   */
  private readonly states = new Map<string, ResultMeta>();
  private bound: number;
  private evicted = 0;
  private readonly waiters = new Map<string, Set<(meta: ResultMeta) => void>>();
  private consuming: Promise<void> | undefined;
  private replyChannel: Channel | undefined;
  private replyDeclared = -1;
  /** The connection generation the reply listener is attached on (-1: none yet). */
  private listening = -1;
  private onAttached: (() => void) | undefined;

  private constructor(
    private readonly session: AmqpSession,
    /** This client's reply queue (the app's oid, sent as every message's `reply_to`). */
    readonly replyQueue: string,
    options: RpcBackendOptions,
  ) {
    this.bound = checkBound(options.maxHeldStates ?? RpcBackend.DEFAULT_MAX_HELD_STATES);
  }

  static async open(settings: AmqpSettings, replyQueue: string, options: RpcBackendOptions = {}): Promise<RpcBackend> {
    if (options.maxHeldStates !== undefined) checkBound(options.maxHeldStates); // before a connection is opened for nothing
    const backend = new RpcBackend(await AmqpSession.open(settings), replyQueue, options);
    await backend.prepareSend();
    return backend;
  }

  /**
   * The bound on held states (`maxHeldStates`). An app
   * opens its backend from the URL, so this is where it is changed there:
   * `(await app.backend() as RpcBackend).maxHeldStates = 1000`. Lowering it drops
   * the oldest states at once.
   */
  get maxHeldStates(): number {
    return this.bound;
  }

  set maxHeldStates(n: number) {
    this.bound = checkBound(n);
    this.evictOverflow();
  }

  /** How many task states this client holds now: never more than {@link RpcBackend.maxHeldStates}. */
  get heldStates(): number {
    return this.states.size;
  }

  /** How many states were dropped to keep the bound (results that arrived and were not asked for in time). */
  get evictedStates(): number {
    return this.evicted;
  }

  /** Hold a state as the most recently used one, dropping the least recently used beyond the bound. */
  private hold(taskId: string, meta: ResultMeta): void {
    this.states.delete(taskId);
    this.states.set(taskId, meta);
    this.evictOverflow();
  }

  private evictOverflow(): void {
    for (const id of this.states.keys()) {
      if (this.states.size <= this.bound) break;
      this.states.delete(id);
      this.evicted++;
    }
  }

  /** A held state, marked as just used. */
  private read(taskId: string): ResultMeta | undefined {
    const meta = this.states.get(taskId);
    if (meta) this.hold(taskId, meta);
    return meta;
  }

  /** Declare the reply queue (once per connection) so a fast worker's reply is never dropped. */
  async prepareSend(): Promise<void> {
    if (this.replyDeclared === this.session.currentGeneration) return;
    const ch = await this.session.adminChannel();
    await ch.assertQueue(this.replyQueue, REPLY_QUEUE_OPTIONS);
    this.replyDeclared = this.session.currentGeneration;
  }

  /** Send a state to the task's sender. A message without `reply_to` has nobody to tell (as in Celery). */
  async store(meta: ResultMeta, options: StoreOptions): Promise<void> {
    if (!options.replyTo) return;
    const body = { task_id: meta.task_id, status: meta.status, result: meta.result, traceback: meta.traceback, children: meta.children ?? [] };
    await this.session.publish('', options.replyTo, Buffer.from(JSON.stringify(body)), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: meta.task_id,
      deliveryMode: 1,
      priority: 0,
    });
  }

  /**
   * Consume the reply queue on every connection. Registered once and retried by the session until it
   * attaches (after a drop, a partition): never awaited by a waiter, so a broker that does not answer
   * cannot make `wait` outlive its timeout.
   */
  private listen(): Promise<void> {
    this.consuming ??= this.session
      .onConnect(
        async (model) => {
          const ch = await model.createChannel();
          ch.on('error', () => undefined);
          try {
            await ch.assertQueue(this.replyQueue, REPLY_QUEUE_OPTIONS);
            await ch.consume(this.replyQueue, (msg) => msg && this.heard(msg.content.toString('utf8')), { noAck: true });
          } catch (err) {
            await ch.close().catch(() => undefined);
            throw err;
          }
          this.replyDeclared = this.session.currentGeneration;
          this.replyChannel = ch;
          this.markAttached();
        },
        { retryFirst: true },
      )
      .then(() => undefined);
    return this.consuming;
  }

  private heard(text: string): void {
    let body: { task_id?: unknown; status?: unknown; result?: unknown; traceback?: unknown; children?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return;
    }
    if (typeof body.task_id !== 'string' || typeof body.status !== 'string') return;
    const known = this.states.get(body.task_id);
    if (known && READY_STATES.has(known.status as TaskState)) return; // A ready state is final.
    const meta: ResultMeta = {
      task_id: body.task_id,
      status: body.status,
      result: body.result ?? null,
      traceback: typeof body.traceback === 'string' ? body.traceback : null,
      children: Array.isArray(body.children) ? body.children : [],
      date_done: null,
    };
    this.hold(body.task_id, meta);
    if (READY_STATES.has(meta.status as TaskState)) for (const w of this.waiters.get(body.task_id) ?? []) w(meta);
  }

  /**
   * Let every reply already queued arrive. The queue hands messages to the
   * consumer's channel before it answers a declare on that channel, so once a
   * check on the reply channel reports an empty queue, everything sent before it
   * (a confirmed `store` included) has been heard.
   */
  /** Wait (at most until `deadline`) for the reply listener to be attached on the current connection. */
  private async attachedBy(deadline: number): Promise<void> {
    while (this.listening !== this.session.currentGeneration || !this.session.connected) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 250));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.onAttached = done;
      });
    }
  }

  private markAttached(): void {
    this.listening = this.session.currentGeneration;
    this.onAttached?.();
    this.onAttached = undefined;
  }

  private async settle(): Promise<void> {
    await this.listen();
    // Bounded: under a partition the check is never answered; then the states already heard are the answer.
    const deadline = Date.now() + this.session.settings.publishTimeoutMs;
    await this.attachedBy(deadline);
    for (let i = 0; i < 50 && Date.now() < deadline; i++) {
      const ch = this.replyChannel;
      if (!ch) return;
      let timer: NodeJS.Timeout | undefined;
      const count = await Promise.race([
        ch.checkQueue(this.replyQueue).then((r) => r.messageCount, () => 0),
        new Promise<number>((r) => (timer = setTimeout(() => r(0), Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
      if (!count) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    await this.settle();
    return this.read(taskId);
  }

  async getMany(taskIds: readonly string[]): Promise<(ResultMeta | undefined)[]> {
    await this.settle();
    return taskIds.map((id) => this.read(id));
  }

  async wait(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    await this.listen(); // Registers the listener; does not wait for the broker.
    const known = this.states.get(taskId);
    if (known && READY_STATES.has(known.status as TaskState)) return known;
    options.signal?.throwIfAborted();
    return new Promise<ResultMeta>((resolve, reject) => {
      let set = this.waiters.get(taskId);
      if (!set) this.waiters.set(taskId, (set = new Set()));
      const finish = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(taskId);
      };
      const done = (meta: ResultMeta): void => {
        finish();
        resolve(meta);
      };
      const onAbort = (): void => {
        finish();
        reject(options.signal?.reason as Error);
      };
      const timer = options.timeoutMs !== undefined ? setTimeout(() => (finish(), reject(new TimeoutError(`Timed out after ${options.timeoutMs} ms waiting for task ${taskId}`, { taskId }))), options.timeoutMs) : undefined;
      options.signal?.addEventListener('abort', onAbort, { once: true });
      set.add(done);
    });
  }

  async forget(taskId: string): Promise<void> {
    await this.settle();
    this.states.delete(taskId);
  }

  /** Revocations travel by broadcast only with `rpc://` (as in Celery): nothing is stored. */
  async revoke(): Promise<void> {}

  async revokedIds(): Promise<Set<string>> {
    return new Set();
  }

  private refuse(what: string): never {
    throw new CapabilityError(`The rpc:// result backend cannot ${what}: results travel only to the sending client. Use a redis:// or sqlite:// result backend.`, {
      backend: 'rpc',
    });
  }

  async saveGroup(): Promise<void> {
    this.refuse('save a group');
  }

  async restoreGroup(): Promise<string[] | undefined> {
    this.refuse('restore a group');
  }

  async chordInit(): Promise<void> {
    this.refuse('join a chord');
  }

  async chordPartReturn(_groupId: string, _part: ChordPart): Promise<ChordPart[] | null> {
    this.refuse('join a chord');
  }

  async chordComplete(): Promise<void> {
    this.refuse('join a chord');
  }

  async close(): Promise<void> {
    await this.replyChannel?.close().catch(() => undefined);
    await this.session.close();
  }
}
