import type { Channel } from 'amqplib';
import { CapabilityError, TimeoutError } from '../../errors.js';
import { READY_STATES, type ResultMeta, type TaskState } from '../../protocol/schema.js';
import { AmqpSession, type AmqpSettings } from '../../transport/amqp/connection.js';
import type { BackendCapabilities, ChordPart, ResultBackend, StoreOptions, WaitOptions } from '../backend.js';

/** Celery's reply queue arguments: not durable, deleted when unused, and gone after a day without use. */
const REPLY_QUEUE_OPTIONS = { durable: false, autoDelete: true, exclusive: false, expires: 86_400_000 } as const;

/**
 * `rpc://`, as Celery 5 does it: each state is a message to the sender's reply
 * queue (the task message's `reply_to`, named after the client's id) with
 * `correlation_id` = task id and the body `{task_id, status, result, traceback,
 * children}`. Results reach only the client that sent the task, so this backend
 * has no chord join, no saved groups and no stored revocations — declared as
 * capabilities, and refused with a named error where a feature needs them.
 */
export class RpcBackend implements ResultBackend {
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
  /** Latest state heard per task id (a ready state is final). */
  private readonly states = new Map<string, ResultMeta>();
  private readonly waiters = new Map<string, Set<(meta: ResultMeta) => void>>();
  private consuming: Promise<void> | undefined;
  private replyChannel: Channel | undefined;
  private replyDeclared = -1;

  private constructor(
    private readonly session: AmqpSession,
    /** This client's reply queue (the app's oid, sent as every message's `reply_to`). */
    readonly replyQueue: string,
  ) {}

  static async open(settings: AmqpSettings, replyQueue: string): Promise<RpcBackend> {
    const backend = new RpcBackend(await AmqpSession.open(settings), replyQueue);
    await backend.prepareSend();
    return backend;
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

  private listen(): Promise<void> {
    this.consuming ??= this.session
      .onConnect(async (model) => {
        const ch = await model.createChannel();
        ch.on('error', () => undefined);
        await ch.assertQueue(this.replyQueue, REPLY_QUEUE_OPTIONS);
        this.replyDeclared = this.session.currentGeneration;
        await ch.consume(this.replyQueue, (msg) => msg && this.heard(msg.content.toString('utf8')), { noAck: true });
        this.replyChannel = ch;
      })
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
    this.states.set(body.task_id, meta);
    if (READY_STATES.has(meta.status as TaskState)) for (const w of this.waiters.get(body.task_id) ?? []) w(meta);
  }

  /**
   * Let every reply already queued arrive. The queue hands messages to the
   * consumer's channel before it answers a declare on that channel, so once a
   * check on the reply channel reports an empty queue, everything sent before it
   * (a confirmed `store` included) has been heard.
   */
  private async settle(): Promise<void> {
    await this.listen();
    for (let i = 0; i < 50; i++) {
      const count = await this.replyChannel?.checkQueue(this.replyQueue).then((r) => r.messageCount, () => 0);
      if (!count) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    await this.settle();
    return this.states.get(taskId);
  }

  async getMany(taskIds: readonly string[]): Promise<(ResultMeta | undefined)[]> {
    await this.settle();
    return taskIds.map((id) => this.states.get(id));
  }

  async wait(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    await this.listen();
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
