import type { ResultBackend } from '../backend/backend.js';
import { ConfigError, CapabilityError, PayloadTooLargeError } from '../errors.js';
import { buildTaskMessage, toWire, wireSize } from '../protocol/message.js';
import { AsyncResult, type ResultHost } from '../result/async-result.js';
import { sent, type Sent } from '../result/sent.js';
import { BACKEND_FACTORIES, REPLY_BACKENDS, TRANSPORT_FACTORIES, type FactoryContext } from '../transport/registry.js';
import { DEAD_LETTER_PAGE, type DeadLetterRecord, type Transport } from '../transport/transport.js';
import type { Signature } from '../canvas/signature.js';
import { messageInitOf } from '../task/wire-options.js';
import { sendCanvas } from '../canvas/run.js';
import { builtinTasks } from './builtins.js';
import type { GroupSignature } from '../canvas/canvas.js';
import type { GroupResult } from '../result/group-result.js';
import type { SignatureLike } from '../protocol/schema.js';
import { contextStorage, type TaskContext } from '../task/context.js';
import { markedMethods } from '../task/decorator.js';
import { deriveTaskName } from '../task/naming.js';
import { taskOptionsSchema, type ApplyOptions, type MessageOptions, type ResolvedTaskOptions, type StandardSchemaV1, type TaskOptions } from '../task/options.js';
import { makeTaskHandle, remoteTaskHandle, type RemoteTaskHandle, type TaskHandle } from '../task/task.js';
import type { AnyTaskFn } from '../task/types.js';
import { newId } from '../util/ids.js';
import { formatIssues } from '../util/issues.js';
import { resolveConfig, type AppOptions, type ResolvedConfig } from './config.js';
import { TaskRegistry, type RegisteredTask } from './registry.js';
import { compileRoutes, type Route } from './routing.js';
import { localContext } from './local-context.js';
import { sendDeduplicated } from './dedup.js';
import { requeueFailed } from './failed-registry.js';
import { BeatRegistry, type BeatEntryInput } from './beat-entries.js';
import { LamportClock } from '../control/clock.js';
import { Control } from '../control/control.js';
import { EventDispatcher } from '../control/events.js';
import { hostname } from 'node:os';

/** `declareTask`'s handle: typed from a task handle's type, or from explicit args and result types. */
export type DeclaredHandle<A, Result> =
  A extends TaskHandle<infer Args, infer R> ? RemoteTaskHandle<Args, R> : A extends readonly unknown[] ? RemoteTaskHandle<A, Result> : never;

let warnedDerivedName = false;

/**
 * A name derived from the file and function is the task's wire name: renaming
 * the file renames the task, and messages already queued under the old name
 * become unknown. Said once per process, so it is seen and not repeated.
 */
function warnDerivedName(name: string): void {
  if (warnedDerivedName) return;
  warnedDerivedName = true;
  process.emitWarning(
    `task name ${JSON.stringify(name)} was derived from its file and function name; renaming either renames the task on the wire. Pass { name: ${JSON.stringify(name)} } to pin it.`,
    { code: 'CELERIAC_DERIVED_TASK_NAME' },
  );
}

/** The task handles `app.register(instance)` returns, one per method. */
export type RegisteredHandles<T> = {
  [K in keyof T as T[K] extends AnyTaskFn ? K : never]: T[K] extends AnyTaskFn
    ? TaskHandle<Parameters<T[K]>, Awaited<ReturnType<T[K]>>>
    : never;
};

/**
 * A celeriac application: configuration, the task registry, and the
 * connections to the broker and result backend (opened on first use).
 */
export class CeleriacApp implements ResultHost {
  readonly config: ResolvedConfig;
  readonly registry = new TaskRegistry();
  /** Periodic entries defined in code, run by `celeriac beat` (or `worker -B`). */
  readonly beat = new BeatRegistry();
  /** This client's id; sent as `reply_to` on every message, as Celery does. */
  readonly oid = newId();
  /** Lamport clock for remote control and events. */
  readonly clock = new LamportClock();
  /** Remote control of the workers (Celery's `app.control`): `broadcast`, `inspect`, `ping`, ... */
  readonly control: Control;
  /** Client-side events (`task-sent`, when `sendSentEvent` is on). */
  readonly events: EventDispatcher;
  /**
   * Subscribe to a sent task's result as it is sent (when the backend pushes and is open), so a
   * `get()` right after skips that round trip. A worker turns it off: the follow-ups it sends
   * (retries, links, chains) are waited on by nobody in its process.
   */
  watchResultsOnSend = true;
  private readonly routeOf: (taskName: string) => Route;
  private readonly transportConnection = new SharedConnection(() => TRANSPORT_FACTORIES[this.config.broker.scheme]!(this.config.broker, this.factoryContext()));
  private readonly backendConnection = new SharedConnection(() => BACKEND_FACTORIES[this.config.backend.scheme]!(this.config.backend, this.factoryContext()));

  constructor(options: AppOptions) {
    this.config = resolveConfig(options);
    this.routeOf = compileRoutes(this.config.routes);
    if (this.config.timezone) this.beat.timezone = this.config.timezone;
    if (this.config.beatSchedule) this.beat.schedule(this.config.beatSchedule as unknown as BeatEntryInput[]);
    for (const builtin of builtinTasks(this)) this.task(builtin.options, builtin.fn);
    this.control = new Control(() => this.transport(), this.oid, this.clock);
    this.events = new EventDispatcher(() => this.transport(), hostname(), this.clock, { enabled: this.config.sendSentEvent });
  }

  /**
   * Define a task. Args and result types are inferred from `fn`, or from the `args` schema when
   * given — any Standard Schema (zod ≥ 3.24 `z.tuple([...])`, valibot, arktype), validated on the
   * worker before the function runs: callers pass its input type, the function gets its output.
   */
  task<S extends StandardSchemaV1<unknown[], unknown[]>, R>(
    options: TaskOptions & { args: S },
    fn: (this: TaskContext, ...args: StandardSchemaV1.InferOutput<S>) => R,
  ): TaskHandle<StandardSchemaV1.InferInput<S>, Awaited<R>>;
  task<F extends AnyTaskFn>(options: TaskOptions, fn: F): TaskHandle<Parameters<F>, Awaited<ReturnType<F>>>;
  task<F extends AnyTaskFn>(fn: F): TaskHandle<Parameters<F>, Awaited<ReturnType<F>>>;
  task(optionsOrFn: TaskOptions | AnyTaskFn, maybeFn?: AnyTaskFn): TaskHandle<unknown[], unknown> {
    const [options, fn] = typeof optionsOrFn === 'function' ? [{}, optionsOrFn] : [optionsOrFn, maybeFn];
    if (typeof fn !== 'function') throw new ConfigError('app.task(options, fn): fn must be a function');
    return this.define(options, fn, () => deriveTaskName(fn.name, new Error().stack));
  }

  /** Register the `@task()` methods of an object, bound to it. */
  register<T extends object>(instance: T): RegisteredHandles<T> {
    const handles: Record<string, TaskHandle<unknown[], unknown>> = {};
    for (const { fn, options, methodName } of markedMethods(instance)) {
      handles[methodName] = this.define(options, (...args: unknown[]) => fn.apply(instance, args), () => `${instance.constructor.name}.${methodName}`);
    }
    return handles as unknown as RegisteredHandles<T>;
  }

  /**
   * A typed, send-only handle for a task implemented elsewhere (another service,
   * or Python): `declareTask<[number, number], number>('tasks.add')`, or typed
   * from a handle's type without importing its code: `declareTask<typeof add>('tasks.add')`.
   */
  declareTask<A = unknown[], Result = unknown>(name: string): DeclaredHandle<A, Result> {
    return remoteTaskHandle(this, name) as DeclaredHandle<A, Result>;
  }

  private define(options: TaskOptions, fn: AnyTaskFn, deriveName: () => string | undefined): TaskHandle<unknown[], unknown> {
    const parsed = taskOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new ConfigError(`Invalid task options: ${formatIssues(parsed.error, { root: '(options)' })}`);
    }
    const name = parsed.data.name ?? deriveName();
    if (!name) throw new ConfigError('Task name could not be derived (anonymous function): pass { name: "module.task" }');
    if (parsed.data.name === undefined) warnDerivedName(name);
    const resolved: ResolvedTaskOptions = Object.freeze({ ...parsed.data, name });
    const registered: RegisteredTask = { name, fn, options: resolved };
    this.registry.add(registered);
    return makeTaskHandle(this, resolved, async (args) => {
      const ctx = localContext(registered, args);
      return contextStorage.run(ctx, () => fn.apply(ctx, args));
    });
  }

  /** The transport, connected on first use (a failed connection is tried afresh next time). */
  transport(): Promise<Transport> {
    return this.transportConnection.get();
  }

  /** The result backend, connected on first use (a failed connection is tried afresh next time). */
  backend(): Promise<ResultBackend> {
    return this.backendConnection.get();
  }

  /** Queue and priority for a task name: call options, then task options, then routes, then defaults. */
  routeFor(taskName: string, options: ApplyOptions = {}): { queue: string; priority: number | undefined; exchange?: string; routingKey?: string } {
    const def = this.registry.get(taskName)?.options;
    const route = this.routeOf(taskName);
    const explicitQueue = options.queue ?? def?.queue;
    return {
      queue: explicitQueue ?? route.queue ?? this.config.defaultQueue,
      priority: options.priority ?? def?.priority ?? route.priority,
      // A route's exchange applies when the route chose the destination (an explicit queue goes straight there).
      ...(explicitQueue === undefined && route.exchange !== undefined ? { exchange: route.exchange } : {}),
      ...(explicitQueue === undefined && route.routingKey !== undefined ? { routingKey: route.routingKey } : {}),
    };
  }

  /** What a transport or backend factory gets besides its URL. */
  private factoryContext(): FactoryContext {
    const { visibilityTimeout, queues, defaultQueue, broker } = this.config;
    return { visibilityTimeout, queues, defaultQueue, broker, oid: this.oid };
  }

  /** Send a task by name (Celery's `send_task`): the task may be registered here or anywhere else. */
  sendTask<R = unknown>(
    name: string,
    args: readonly unknown[] = [],
    kwargs: Readonly<Record<string, unknown>> = {},
    options: MessageOptions = {},
  ): Sent<AsyncResult<R>> {
    return sent(this.publishTask<R>(name, args, kwargs, options));
  }

  private async publishTask<R>(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options: MessageOptions): Promise<AsyncResult<R>> {
    if (options.deduplicate) {
      const { deduplicate } = options;
      return sendDeduplicated<R>(this, name, { ...options, deduplicate }, (o) => this.publishTask<R>(name, args, kwargs, o));
    }
    const { queue, priority, exchange, routingKey } = this.routeFor(name, options);
    const id = options.taskId ?? newId();
    const init = messageInitOf(name, id, { args, kwargs }, options, { defaults: this.registry.get(name)?.options, replyTo: this.oid, priority, now: Date.now() });
    const message = buildTaskMessage(init);
    const wire = toWire(message);
    const size = wireSize(wire, this.config.maxPayloadBytes);
    if (size > this.config.maxPayloadBytes) throw new PayloadTooLargeError(size, this.config.maxPayloadBytes, name);
    const transport = await this.transport();
    const notBefore = init.etaMs ?? undefined;
    if (notBefore !== undefined && !transport.capabilities.delayedDelivery) {
      throw new CapabilityError(`The ${transport.kind} transport cannot delay delivery (countdown/eta)`, { transport: transport.kind });
    }
    if (REPLY_BACKENDS.has(this.config.backend.scheme)) await (await this.backend()).prepareSend?.();
    // Listen for the result before it can exist, when the backend is open already (Celery's on_task_call).
    if (this.watchResultsOnSend && !message.headers.ignore_result) this.backendConnection.ready()?.watch?.(id);
    await transport.publish(queue, wire, {
      ...(priority !== undefined ? { priority } : {}),
      ...(notBefore !== undefined ? { notBefore } : {}),
      ...(exchange !== undefined ? { exchange } : {}),
      ...(routingKey !== undefined ? { routingKey } : {}),
    });
    if (this.events.enabled) {
      const h = message.headers;
      this.events.send('task-sent', {
        uuid: id, root_id: h.root_id, parent_id: h.parent_id, name, args: h.argsrepr, kwargs: h.kwargsrepr,
        retries: h.retries, eta: h.eta, expires: h.expires, queue, exchange: exchange ?? '', routing_key: routingKey ?? queue,
      });
    }
    return new AsyncResult<R>(id, this);
  }

  /**
   * Put dead-lettered messages back on their original queue (all of them, or
   * the given ids) — after fixing what made them fail, e.g. deploying a worker
   * that knows the task. Returns how many were requeued.
   */
  async requeueDeadLetters(ids?: readonly string[]): Promise<number> {
    const [transport, backend] = await Promise.all([this.transport(), this.backend()]);
    const requeue = async (record: DeadLetterRecord): Promise<void> => {
      // The FAILURE recorded when it was refused is no longer its outcome: the new run's result will be.
      if ((await backend.get(record.id))?.status === 'FAILURE') await backend.forget(record.id);
      // Publish first, then remove: a crash in between duplicates an entry but never loses one.
      const priority = record.wire.properties.priority;
      await transport.publish(record.queue, record.wire, typeof priority === 'number' ? { priority } : {});
      // Only this record: the message may already be refused again, under the same id.
      await transport.takeDeadLetter(record.id, { failedAt: record.failedAt });
    };
    if (ids) {
      const found = await this.findDeadLetters(ids);
      for (const record of found) await requeue(record);
      return found.length;
    }
    // A page at a time from the oldest, as many as were stored when asked: one refused again at once
    // (a still-malformed message) goes to the end of the store and is not requeued twice.
    let left = await transport.deadLetterCount();
    let n = 0;
    while (left > 0) {
      const page = await transport.listDeadLetters({ limit: Math.min(left, DEAD_LETTER_PAGE) });
      if (page.length === 0) break;
      for (const record of page) await requeue(record);
      left -= page.length;
      n += page.length;
    }
    return n;
  }

  /**
   * Send failed tasks from the registry again as they were sent (`celeriac failed requeue`): the given
   * ids, or all of them. Needs a Redis or SQLite result backend (`CAPABILITY_MISSING` otherwise).
   */
  async requeueFailed(ids?: readonly string[]): Promise<number> {
    const [transport, backend] = await Promise.all([this.transport(), this.backend()]);
    return requeueFailed(transport, backend, ids);
  }

  /** The dead letters with these ids (read a page at a time; the store is never loaded whole). */
  async findDeadLetters(ids: readonly string[]): Promise<DeadLetterRecord[]> {
    const transport = await this.transport();
    const wanted = new Set(ids);
    const found: DeadLetterRecord[] = [];
    for (let offset = 0; wanted.size > 0; offset += DEAD_LETTER_PAGE) {
      const page = await transport.listDeadLetters({ offset, limit: DEAD_LETTER_PAGE });
      for (const r of page) if (wanted.delete(r.id)) found.push(r);
      if (page.length < DEAD_LETTER_PAGE) break;
    }
    return found;
  }

  /**
   * Send a signature or a canvas (`chain`, `group`, `chord`), encoded as Celery
   * encodes it. A chain or chord resolves to its final result; a group to a GroupResult.
   */
  send<R>(sig: GroupSignature<R>, options?: ApplyOptions): Sent<GroupResult<R>>;
  send<R>(sig: Signature<[], R>, options?: ApplyOptions): Sent<AsyncResult<R>>;
  send(sig: SignatureLike, options?: ApplyOptions): Sent<AsyncResult | GroupResult>;
  send(sig: SignatureLike, options: ApplyOptions = {}): Sent<AsyncResult | GroupResult> {
    return sent(sendCanvas(this, sig, options));
  }

  /** Result TTL (ms), as configured. */
  get resultExpires(): number {
    return this.config.resultExpires;
  }

  /** A handle on a task's result by id. */
  asyncResult<R = unknown>(taskId: string): AsyncResult<R> {
    return new AsyncResult<R>(taskId, this);
  }

  /**
   * Revoke tasks: stored in the result backend with a TTL (so workers that
   * start later honour it) and broadcast to running workers.
   */
  async revoke(taskIds: readonly string[], options: { terminate?: boolean } = {}): Promise<void> {
    await (await this.backend()).revoke(taskIds, { expiresMs: this.config.revokeExpires });
    const transport = await this.transport();
    if (transport.capabilities.fanout) {
      const taskId = taskIds.length === 1 ? taskIds[0] : taskIds;
      await this.control.broadcast('revoke', { task_id: taskId, terminate: options.terminate ?? false, signal: 'SIGTERM' }, { reply: false });
    }
  }

  /** Close the broker and backend connections this app opened. */
  async close(): Promise<void> {
    const [t, b] = [this.transportConnection.take(), this.backendConnection.take()];
    await Promise.all([t?.then((x) => x.close()), b?.then((x) => x.close())]);
  }
}

/** A connection opened on first use and shared; a failed opening is forgotten, so the next use tries again. */
class SharedConnection<T> {
  private current: Promise<T> | undefined;
  private opened: T | undefined;

  constructor(private readonly open: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.current) {
      const opening = this.open();
      this.current = opening;
      opening.then(
        (value) => {
          if (this.current === opening) this.opened = value;
        },
        () => {
          if (this.current === opening) this.current = undefined;
        },
      );
    }
    return this.current;
  }

  /** The connection if it is open now (no waiting, no opening). */
  ready(): T | undefined {
    return this.opened;
  }

  /** Hand over the connection (to close it) and forget it. */
  take(): Promise<T> | undefined {
    const current = this.current;
    this.current = undefined;
    this.opened = undefined;
    return current;
  }
}

/** Create an app. Configuration is validated here, once, and frozen; problems throw {@link ConfigError}. */
export function createApp(options: AppOptions = {}): CeleriacApp {
  return new CeleriacApp(options);
}
