import {
  applyCanvas,
  finalTaskIds,
  checkResult,
  CeleriacError,
  encodeException,
  ErrorCodes,
  fromWire,
  parseCeleryIso,
  resolveCallArgs,
  RetryRequested,
  requestRetry,
  SoftTimeLimitExceeded,
  tracebackOf,
  wireSize,
  type CeleriacApp,
  type Delivery,
  type StoreOptions,
  type RegisteredTask,
  type ResultBackend,
  type TaskContext,
  type TaskMessage,
  type SignatureLike,
  type TaskHeaders,
  type TaskLogger,
  type RetryOptions,
  type ResultMeta,
  type Transport,
  UnknownTaskError,
  PayloadTooLargeError,
  newId,
  LeaseLostError,
} from '@celeriac/core';
import type { Logger } from './logger.js';
import { taskLogger } from './logger.js';
import type { Pool } from './pools/pool.js';
import { CELERY_EXCEPTIONS, resultMeta, storableResult } from './results.js';
import { retryDelay, shouldAutoretry } from './retry.js';
import type { WorkerEvents } from './events.js';
import type { RateLimiter } from './rate-limit.js';
import { LazyAbort } from './lazy-abort.js';
import { ChildTaskError, TimeLimitExceeded, WorkerLostError } from './pools/errors.js';
import { persist, PersistHalted } from './persist.js';

/** Unknown task names remembered for their once-only warning; the oldest is forgotten past this. */
export const UNKNOWN_NAMES_MAX = 1000;

/** Marks a message re-sent to wait for its booked rate-limit slot (epoch ms). */
const RATE_SLOT_HEADER = 'x-celeriac-rate-slot';

/** Protocol header names; anything else in a message's headers is a custom header to carry along on retry. */
const PROTOCOL_HEADERS = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit',
  'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result',
]);

/** Why the worker aborted a running task's signal: revoke with terminate, or cold shutdown. */
export class Interrupt extends Error {
  constructor(readonly kind: 'terminate' | 'shutdown') {
    super(kind === 'terminate' ? 'Task revoked (terminate)' : 'Worker cold shutdown');
    this.name = 'Interrupt';
  }
}

export interface TraceDeps {
  readonly app: CeleriacApp;
  readonly transport: Transport;
  readonly backend: ResultBackend;
  readonly pool: Pool;
  readonly log: Logger;
  readonly events: WorkerEvents;
  /** Ids revoked by broadcast while this worker runs (the backend holds the durable list). */
  readonly revoked: Set<string>;
  readonly rateLimiter: RateLimiter;
  /** Unknown task names seen, with counts (logged once per name). */
  readonly unknownTasks: Map<string, number>;
  /** Running tasks: their abort controller (revoke with terminate, cold shutdown) and what remote control reports. */
  readonly running: Map<string, RunningTask>;
  /** Time limits set at run time by remote control (`time_limit`), ms; null lifts one. */
  readonly timeLimits: Map<string, { hard?: number | null; soft?: number | null }>;
  /** Aborted when the worker goes cold: steps still retrying give up, and their deliveries return by the broker's rules. */
  readonly halt: AbortSignal;
}

/** A task this worker is running now (`inspect active`). */
export interface RunningTask {
  readonly controller: LazyAbort;
  readonly name: string;
  readonly headers: TaskHeaders;
  readonly queue: string;
  /** Epoch ms. */
  readonly startedAt: number;
}

/** The task with the time limits remote control set for it, if any. */
function withRunTimeLimits(task: RegisteredTask, limits: TraceDeps['timeLimits']): RegisteredTask {
  const set = limits.get(task.name);
  if (!set) return task;
  const options = { ...task.options };
  if (set.hard !== undefined) options.timeLimit = set.hard ?? undefined;
  if (set.soft !== undefined) options.softTimeLimit = set.soft ?? undefined;
  return { ...task, options: Object.freeze(options) };
}

/**
 * Run one delivery to its end: a stored result, a retry, or a dead-letter
 * entry with a reason — then the ack. Never throws: whatever goes wrong is
 * recorded and the worker keeps serving.
 */
export async function traceDelivery(deps: TraceDeps, delivery: Delivery): Promise<void> {
  try {
    await trace(deps, delivery);
  } catch (err) {
    await giveBack(deps, delivery, err);
  }
}

/**
 * The outcome could not be recorded for good. A lost lease means another worker has the message
 * now; a worker going cold leaves it to the broker (unacked: it comes back). Anything else is a
 * permanent error in a follow-up: the message goes back after a doubling pause (as a crash would,
 * so its delivery count ends a loop) rather than in a tight loop.
 */
async function giveBack(deps: TraceDeps, delivery: Delivery, err: unknown): Promise<void> {
  const id = typeof delivery.message.headers.id === 'string' ? delivery.message.headers.id : undefined;
  if (err instanceof LeaseLostError) {
    deps.log.warn({ taskId: id, code: err.code }, `${err.message}: another worker owns this task now; its outcome here is dropped`);
    return;
  }
  if (err instanceof PersistHalted) {
    deps.log.warn({ taskId: id, err }, 'worker stopping with a task outcome unrecorded: the message stays unacknowledged and returns to the queue');
    return;
  }
  const delayMs = Math.min(60_000, 1000 * 2 ** (delivery.deliveryCount - 1));
  deps.log.error({ err, taskId: id, queue: delivery.queue, redeliverInMs: delayMs }, 'could not record the outcome of a task; returning it to the queue');
  await keep(deps, 'return the message to its queue', () => delivery.reject({ requeue: true, delayMs }), id).catch((again: unknown) => {
    deps.log.error({ err: again, taskId: id }, 'could not return the message; it comes back after the visibility window');
  });
}

/** {@link persist} with this worker's log and halt signal. */
function keep<T>(deps: Pick<TraceDeps, 'log' | 'halt'>, what: string, step: () => Promise<T>, taskId?: string): Promise<T> {
  return persist(step, { log: deps.log, halt: deps.halt, what, ...(taskId ? { fields: { taskId } } : {}) });
}

/**
 * Before a result is written: is this delivery still ours? A worker paused past its lease
 * (SIGSTOP, a long GC, a frozen VM) finds the task handed to another worker, and must write
 * neither a result nor an ack (Kleppmann's fencing: the other run's outcome stands).
 */
async function stillOwned(deps: TraceDeps, delivery: Delivery, id: string): Promise<boolean> {
  if (!delivery.leaseHeld) return true;
  const held = await keep(deps, 'check the lease', () => delivery.leaseHeld!(), id);
  if (!held) deps.log.warn({ taskId: id, code: ErrorCodes.LEASE_LOST }, 'LEASE_LOST: this delivery\'s lease lapsed (the worker was paused or cut off) and another worker was handed it; no result and no ack are written for it here');
  return held;
}

async function trace(deps: TraceDeps, delivery: Delivery): Promise<void> {
  const { app, log } = deps;
  const cfg = app.config;
  const headerId = typeof delivery.message.headers.id === 'string' ? delivery.message.headers.id : undefined;

  const size = wireSize(delivery.message, cfg.maxPayloadBytes);
  if (size > cfg.maxPayloadBytes) {
    const taskName = typeof delivery.message.headers.task === 'string' ? delivery.message.headers.task : 'unknown';
    return refuse(deps, delivery, headerId, taskName, new PayloadTooLargeError(size, cfg.maxPayloadBytes, taskName));
  }
  let message: TaskMessage;
  try {
    message = fromWire(delivery.message);
  } catch (err) {
    const named = typeof delivery.message.headers.task === 'string' ? delivery.message.headers.task : null;
    return refuse(deps, delivery, headerId, named, err);
  }
  const { headers } = message;
  const [args, kwargs, embed] = message.body;
  const id = headers.id;
  if (deps.events.listenerCount('task-received')) deps.events.emit('task-received', { id, name: headers.task, headers });

  const found = app.registry.get(headers.task);
  if (!found) return refuse(deps, delivery, id, headers.task, new UnknownTaskError(headers.task), message);
  const task = deps.timeLimits.size ? withRunTimeLimits(found, deps.timeLimits) : found;
  // Prefetched by a worker that was then paused past its lease: handed on meanwhile, so neither run
  // nor copied (cheap while the lease is fresh).
  if (!(await stillOwned(deps, delivery, id))) return;

  if (delivery.deliveryCount > cfg.maxDeliveries) {
    // Each earlier delivery ended without an ack: its worker died (or was killed) running it.
    const detail = `Worker exited prematurely: delivered ${delivery.deliveryCount - 1} times without finishing (maxDeliveries ${cfg.maxDeliveries})`;
    const exc = CELERY_EXCEPTIONS.workerLost(detail);
    await store(deps, delivery, resultMeta(headers, 'FAILURE', exc));
    await dispatchErrbacks(deps, message);
    await settleFollowUps(deps, message, 'FAILURE', exc);
    const record = { id, taskName: headers.task, reason: ErrorCodes.WORKER_LOST, message: detail, traceback: null, failedAt: Date.now() };
    await keep(deps, 'dead-letter the message', () => deps.transport.deadLetter(delivery, record), id);
    deps.events.emit('task-rejected', { id, name: headers.task, reason: ErrorCodes.WORKER_LOST });
    return;
  }

  const now = Date.now();
  const eta = headers.eta ? parseCeleryIso(headers.eta) : NaN;
  if (eta > now + 5 && deps.transport.capabilities.delayedDelivery) {
    // A future ETA (e.g. from Python Celery, or a broker without delays): park it broker-side, never in memory.
    await keep(deps, 'park the message until its eta', () => app.sendTask(headers.task, args, kwargs, { ...followUp(message, delivery), taskId: id, retries: headers.retries, eta }), id);
    await keep(deps, 'ack', () => delivery.ack(), id);
    return;
  }

  if (deps.revoked.has(id)) {
    return skip(deps, delivery, message, 'revoked');
  }
  const expires = headers.expires ? parseCeleryIso(headers.expires) : NaN;
  if (expires <= now) return skip(deps, delivery, message, 'expired');

  // A message sent back for its rate-limit slot already holds that slot: it runs when it returns.
  const booked = typeof headers[RATE_SLOT_HEADER] === 'number';
  const wait = booked ? 0 : deps.rateLimiter.reserve(task.name, task.options.rateLimit);
  if (wait > 0 && deps.transport.capabilities.delayedDelivery) {
    // Over its rate: back to the broker until its slot, holding neither a slot nor the message here.
    const options = followUp(message, delivery);
    const later = { ...options, headers: { ...options.headers, [RATE_SLOT_HEADER]: now + wait }, taskId: id, retries: headers.retries, countdown: wait };
    await keep(deps, 'send the message back for its rate-limit slot', () => app.sendTask(headers.task, args, kwargs, later), id);
    await keep(deps, 'ack', () => delivery.ack(), id);
    return;
  }

  const acksLate = task.options.acksLate ?? cfg.acksLate;
  if (!acksLate) await keep(deps, 'ack', () => delivery.ack(), id);
  const ack = acksLate ? () => keep(deps, 'ack', () => delivery.ack(), id) : async () => undefined;

  let callArgs: unknown[];
  try {
    callArgs = resolveCallArgs(task, args, kwargs);
  } catch (err) {
    return refuse(deps, delivery, id, headers.task, err, message);
  }

  const controller = new LazyAbort();
  deps.running.set(id, { controller, name: task.name, headers, queue: delivery.queue, startedAt: Date.now() });
  const ctx = makeContext(deps, task, message, controller, delivery);
  if (task.options.trackStarted ?? cfg.trackStarted) {
    await store(deps, delivery, resultMeta(headers, 'STARTED', { pid: process.pid }));
  }
  if (deps.events.listenerCount('task-started')) deps.events.emit('task-started', { id, name: task.name });
  const started = performance.now();
  // A soft limit set at run time (already in task.options) wins over the message's; no lookup when none is set.
  const runTimeSoft = deps.timeLimits.size > 0 && deps.timeLimits.get(task.name)?.soft !== undefined;
  const softMs = runTimeSoft || headers.timelimit[1] === null ? task.options.softTimeLimit : headers.timelimit[1] * 1000;
  const softTimer = softMs !== undefined ? setTimeout(() => controller.abort(new SoftTimeLimitExceeded(softMs / 1000)), softMs) : undefined;
  let value: unknown;
  try {
    value = storableResult(checkResult(task, await deps.pool.run({ task, args: callArgs, ctx })));
  } catch (err) {
    clearTimeout(softTimer);
    deps.running.delete(id);
    if (err instanceof WorkerLostError) {
      // Reject-on-worker-lost: the message goes back after a doubling pause (a crash loop must not spin);
      // its delivery count decides when it is a poison message.
      const delayMs = Math.min(60_000, 1000 * 2 ** (delivery.deliveryCount - 1));
      log.error({ taskId: id, task: task.name, deliveryCount: delivery.deliveryCount, redeliverInMs: delayMs }, err.message);
      await keep(deps, 'return the message to its queue', () => delivery.reject({ requeue: true, delayMs }), id);
      return;
    }
    if (err instanceof TimeLimitExceeded) {
      if (!(await stillOwned(deps, delivery, id))) return;
      await store(deps, delivery, resultMeta(headers, 'FAILURE', CELERY_EXCEPTIONS.timeLimit(err.seconds)));
      log.error({ taskId: id, task: task.name }, `hard time limit (${err.seconds} s) exceeded: child killed`);
      deps.events.emit('task-failed', { id, name: task.name, exception: CELERY_EXCEPTIONS.timeLimit(err.seconds), traceback: null });
      await dispatchErrbacks(deps, message);
      await settleFollowUps(deps, message, 'FAILURE', CELERY_EXCEPTIONS.timeLimit(err.seconds));
      await ack();
      return;
    }
    const interrupt: unknown = controller.reason;
    if (interrupt instanceof Interrupt) {
      if (interrupt.kind === 'terminate') return skip(deps, delivery, message, 'revoked');
      // Cold shutdown: not the task's failure. Give it back to run elsewhere.
      await keep(deps, 'return the message to its queue', () => delivery.reject({ requeue: true }), id);
      return;
    }
    if (!(await stillOwned(deps, delivery, id))) return;
    return onFailure(deps, delivery, task, message, err, ack);
  }
  clearTimeout(softTimer);
  deps.running.delete(id);
  const runtime = (performance.now() - started) / 1000;
  if (!(await stillOwned(deps, delivery, id))) return;
  if (!(headers.ignore_result || task.options.ignoreResult)) await store(deps, delivery, resultMeta(headers, 'SUCCESS', value ?? null));
  if (log.isLevelEnabled('info')) log.info({ taskId: id, task: task.name, runtime }, 'task succeeded');
  if (deps.events.listenerCount('task-succeeded')) deps.events.emit('task-succeeded', { id, name: task.name, result: value, runtime });
  for (const sig of embed.callbacks ?? []) {
    await keep(deps, 'send a link', () => applyCanvas(app, sig, { prepend: [value ?? null], parentId: id, rootId: headers.root_id ?? id }), id);
  }
  const chain = embed.chain ?? [];
  const next = chain[chain.length - 1];
  if (next) {
    const rest = { prepend: [value ?? null], parentId: id, rootId: headers.root_id ?? id, chain: chain.slice(0, -1) };
    await keep(deps, "send the chain's next step", () => applyCanvas(app, next, rest), id);
  }
  // On success the only follow-up is a chord member's join: no call (and no promise) without one.
  if (embed.chord) await settleFollowUps(deps, message, 'SUCCESS', value ?? null);
  await ack();
}

/** Store a task's state where its caller reads it, retried while the backend is away. */
function store(deps: TraceDeps, delivery: Delivery, meta: ResultMeta): Promise<void> {
  return keep(deps, `store the ${meta.status} state`, () => deps.backend.store(meta, storeOptions(deps, delivery)), meta.task_id);
}

/** Where and for how long a state is stored: `rpc://` replies to the message's `reply_to`. */
function storeOptions(deps: Pick<TraceDeps, 'app'>, delivery: Delivery): StoreOptions {
  const replyTo = delivery.message.properties.reply_to;
  return { expiresMs: deps.app.config.resultExpires, replyTo: typeof replyTo === 'string' ? replyTo : undefined };
}

/** Options that keep a message's identity and follow-ups when it is sent again (retry, parked ETA). */
function followUp(message: TaskMessage, delivery: Delivery) {
  const { headers } = message;
  const embed = message.body[2];
  const custom = Object.fromEntries(Object.entries(headers).filter(([k]) => !PROTOCOL_HEADERS.has(k) && k !== RATE_SLOT_HEADER));
  const expires = headers.expires ? parseCeleryIso(headers.expires) : NaN;
  const { priority, reply_to: replyTo } = delivery.message.properties;
  return {
    queue: delivery.queue,
    ...(typeof replyTo === 'string' ? { replyTo } : {}),
    rootId: headers.root_id ?? headers.id,
    ...(headers.parent_id ? { parentId: headers.parent_id } : {}),
    ...(typeof priority === 'number' ? { priority } : {}),
    ...(Number.isFinite(expires) ? { expires: new Date(expires) } : {}),
    ...(headers.group ? { groupId: headers.group } : {}),
    ...(headers.group_index !== null ? { groupIndex: headers.group_index } : {}),
    ...(headers.timelimit[0] !== null ? { timeLimit: headers.timelimit[0] * 1000 } : {}),
    ...(headers.timelimit[1] !== null ? { softTimeLimit: headers.timelimit[1] * 1000 } : {}),
    ...(embed.callbacks ? { link: embed.callbacks } : {}),
    ...(embed.errbacks ? { linkError: embed.errbacks } : {}),
    ...(embed.chain ? { chain: embed.chain } : {}),
    ...(embed.chord ? { chord: embed.chord } : {}),
    ...(Object.keys(custom).length ? { headers: custom } : {}),
    ignoreResult: headers.ignore_result,
  };
}

function makeContext(deps: TraceDeps, task: RegisteredTask, message: TaskMessage, controller: LazyAbort, delivery: Delivery): TaskContext {
  return new WorkerTaskContext(deps, task, message.headers, controller, delivery);
}

/**
 * A running task's context. A class (methods and lazy getters on the
 * prototype) because one is made per task: the signal and the pino child
 * logger are only built when the task uses them.
 */
class WorkerTaskContext implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly groupId: string | null;
  private logger: TaskLogger | undefined;

  constructor(
    private readonly deps: TraceDeps,
    task: RegisteredTask,
    private readonly headers: TaskHeaders,
    private readonly controller: LazyAbort,
    private readonly delivery: Delivery,
  ) {
    this.id = headers.id;
    this.name = task.name;
    this.retries = headers.retries;
    this.rootId = headers.root_id;
    this.parentId = headers.parent_id;
    this.groupId = headers.group;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get log(): TaskLogger {
    this.logger ??= taskLogger(this.deps.log, this.id, this.name);
    return this.logger;
  }

  updateState(state: string, meta?: unknown): Promise<void> {
    return this.deps.backend.store(resultMeta(this.headers, state, meta ?? null), storeOptions(this.deps, this.delivery));
  }

  retry(options: RetryOptions = {}): never {
    return requestRetry(options);
  }
}

async function onFailure(
  deps: TraceDeps,
  delivery: Delivery,
  task: RegisteredTask,
  message: TaskMessage,
  err: unknown,
  ack: () => Promise<void>,
): Promise<void> {
  const { app, log } = deps;
  const { headers } = message;
  const id = headers.id;
  const requested = err instanceof RetryRequested ? err : undefined;
  const cause = requested ? (requested.cause_ ?? requested) : err;
  const autoretry = err instanceof ChildTaskError ? err.autoretry : shouldAutoretry(task.options, err);
  if (requested || autoretry) {
    const maxRetries = requested?.maxRetries ?? task.options.maxRetries;
    if (headers.retries < maxRetries) {
      const countdown = requested?.countdown ?? retryDelay(task.options, headers.retries);
      // The retry is a new message for the same id, delivered later by the broker — never held here.
      await app.sendTask(task.name, message.body[0], message.body[1], {
        ...followUp(message, delivery),
        taskId: id,
        retries: headers.retries + 1,
        parentId: id,
        countdown,
      });
      await store(deps, delivery, resultMeta(headers, 'RETRY', encodeException(cause), tracebackOf(cause)));
      log.info({ taskId: id, task: task.name, retries: headers.retries + 1, countdown }, 'task retry scheduled');
      deps.events.emit('task-retried', { id, name: task.name, retries: headers.retries + 1, exception: encodeException(cause), traceback: tracebackOf(cause) });
      await ack();
      return;
    }
  }
  const exc = encodeException(cause);
  await store(deps, delivery, resultMeta(headers, 'FAILURE', exc, tracebackOf(cause)));
  log.warn({ taskId: id, task: task.name, excType: exc.exc_type, err: cause }, 'task failed');
  deps.events.emit('task-failed', { id, name: task.name, exception: exc, traceback: tracebackOf(cause) });
  await dispatchErrbacks(deps, message);
  await settleFollowUps(deps, message, 'FAILURE', exc);
  await ack();
}

/** Errbacks get the failed task's id first, then their own args (Celery's `on_task_error(task_id, ...)`). */
async function dispatchErrbacks(deps: TraceDeps, message: TaskMessage): Promise<void> {
  const { headers } = message;
  for (const sig of message.body[2].errbacks ?? []) {
    const errback = { ...sig, immutable: false };
    await keep(deps, 'send an errback', () => applyCanvas(deps.app, errback, { prepend: [headers.id], parentId: headers.id, rootId: headers.root_id ?? headers.id }), headers.id);
  }
}

/**
 * What follows a task once its outcome is known, besides links: a chain stopped
 * by a failure or a revocation gives that outcome to every step that will now
 * never run (so whoever waits on the chain's result hears it), and a chord
 * header member joins its chord.
 */
async function settleFollowUps(deps: TraceDeps, message: TaskMessage, state: string, result: unknown): Promise<void> {
  if (state !== 'SUCCESS') {
    const ids = (message.body[2].chain ?? []).flatMap(finalTaskIds);
    for (const id of ids) {
      const meta = resultMeta({ id, group: null, parent_id: message.headers.id }, state, result);
      const replyTo = typeof message.properties.reply_to === 'string' ? message.properties.reply_to : undefined;
      await keep(deps, "store a stopped chain step's state", () => deps.backend.store(meta, { expiresMs: deps.app.config.resultExpires, replyTo }), id);
    }
  }
  const { headers } = message;
  const chain = message.body[2].chain ?? [];
  const body = message.body[2].chord;
  if (body && headers.group && headers.group_index !== null) {
    await joinChord(deps, { group: headers.group, index: headers.group_index, taskId: headers.id, rootId: headers.root_id ?? headers.id, body }, state, result);
  } else if (state !== 'SUCCESS' && chain.length) {
    // A chain that is a chord header member carries the membership on its last step, which will now never
    // run: join for it, with this outcome, or the chord would wait forever.
    const last = chain[0]!;
    const o = last.options;
    if (o.chord && typeof o.group_id === 'string' && typeof o.group_index === 'number' && typeof o.task_id === 'string') {
      await joinChord(deps, { group: o.group_id, index: o.group_index, taskId: o.task_id, rootId: headers.root_id ?? headers.id, body: o.chord as SignatureLike }, state, result);
    }
  }
}

/** A chord header member, as its message (or, for a chain member, its last step's options) describes it. */
interface ChordMember {
  readonly group: string;
  readonly index: number;
  readonly taskId: string;
  readonly rootId: string;
  readonly body: SignatureLike;
}

/**
 * A chord header member finished (in any state): join it. The member that
 * completes the join sends the body with every result in header order — or,
 * when a member did not succeed, stores the body's FAILURE (Celery's
 * ChordError naming that member) and runs the body's errbacks. A chord never hangs.
 */
async function joinChord(deps: TraceDeps, m: ChordMember, state: string, result: unknown): Promise<void> {
  const { body } = m;
  const expiresMs = deps.app.config.resultExpires;
  const part = { index: m.index, taskId: m.taskId, state, result };
  const parts = await keep(deps, 'join the chord', () => deps.backend.chordPartReturn(m.group, part, { expiresMs }), m.taskId);
  if (!parts) return;
  const failed = parts.find((p) => p.state !== 'SUCCESS');
  const bodyIds = finalTaskIds(body);
  const bodyId = bodyIds[0];
  if (!failed) {
    const results = parts.map((p) => p.result);
    await keep(deps, 'send the chord body', () => applyCanvas(deps.app, body, { prepend: [results], parentId: m.taskId, rootId: m.rootId }), m.taskId);
    await keep(deps, 'complete the chord', () => deps.backend.chordComplete(m.group, { expiresMs }), m.taskId);
    return;
  }
  const cause = failed.result as { exc_type?: string; exc_message?: unknown[] } | null;
  const exc = {
    exc_type: 'ChordError',
    exc_message: [`Dependency ${failed.taskId} raised ${cause?.exc_type ?? failed.state}(${JSON.stringify(cause?.exc_message?.[0] ?? '')})`],
    exc_module: 'celery.exceptions',
  };
  for (const id of bodyIds) {
    await keep(deps, "store the chord body's FAILURE", () => deps.backend.store(resultMeta({ id, group: null, parent_id: m.taskId }, 'FAILURE', exc), { expiresMs }), m.taskId);
  }
  deps.log.warn({ chord: m.group, failedMember: failed.taskId }, 'chord body not run: a header task failed');
  for (const errback of (body.options.link_error as SignatureLike[] | undefined) ?? []) {
    const sig = { ...errback, immutable: false };
    await keep(deps, "send the chord body's errback", () => applyCanvas(deps.app, sig, { prepend: [bodyId ?? m.group], parentId: m.taskId }), m.taskId);
  }
  await keep(deps, 'complete the chord', () => deps.backend.chordComplete(m.group, { expiresMs }), m.taskId);
}

async function skip(deps: TraceDeps, delivery: Delivery, message: TaskMessage, reason: 'revoked' | 'expired'): Promise<void> {
  const { headers } = message;
  await store(deps, delivery, resultMeta(headers, 'REVOKED', CELERY_EXCEPTIONS.revoked(reason)));
  await settleFollowUps(deps, message, 'REVOKED', CELERY_EXCEPTIONS.revoked(reason));
  deps.log.info({ taskId: headers.id, task: headers.task, reason }, 'task skipped');
  deps.events.emit('task-revoked', { id: headers.id, name: headers.task, reason });
  await keep(deps, 'ack', () => delivery.ack(), headers.id);
}

/**
 * Bad input: record FAILURE with the reason (when the id is readable, so a
 * waiting caller gets an answer) and move the message to the dead-letter store.
 */
async function refuse(
  deps: TraceDeps,
  delivery: Delivery,
  id: string | undefined,
  taskName: string | null,
  err: unknown,
  message?: TaskMessage,
): Promise<void> {
  const reason = err instanceof CeleriacError ? err.code : ErrorCodes.MESSAGE_MALFORMED;
  const text = err instanceof Error ? err.message : String(err);
  if (id) {
    const headers = message?.headers ?? { id, group: null, parent_id: null };
    await store(deps, delivery, resultMeta(headers, 'FAILURE', encodeException(err), tracebackOf(err)));
    if (message) {
      await dispatchErrbacks(deps, message);
      await settleFollowUps(deps, message, 'FAILURE', encodeException(err));
    }
  }
  if (reason === ErrorCodes.TASK_UNKNOWN && taskName !== null) {
    // One warning per unknown name (a rolling deploy can send thousands), then a count at debug level.
    const seen = (deps.unknownTasks.get(taskName) ?? 0) + 1;
    // Bounded: names come from the wire, and a stream of made-up names must not grow a map for good.
    if (seen === 1 && deps.unknownTasks.size >= UNKNOWN_NAMES_MAX) deps.unknownTasks.delete(deps.unknownTasks.keys().next().value!);
    deps.unknownTasks.set(taskName, seen);
    if (seen === 1) deps.log.warn({ task: taskName }, `unregistered task ${JSON.stringify(taskName)}: messages go to the dead-letter store (requeue them once a worker knows it)`);
    else deps.log.debug({ taskId: id, task: taskName, seen }, 'unregistered task dead-lettered');
  } else {
    deps.log.error({ taskId: id, task: taskName, reason }, `message refused: ${text}`);
  }
  deps.events.emit('task-rejected', { id: id ?? null, name: taskName, reason });
  const record = { id: id ?? newId(), taskName, reason, message: text, traceback: tracebackOf(err), failedAt: Date.now() };
  // With early acks the delivery is already settled: every transport then writes the record alone
  // (its ack is a no-op once settled).
  await keep(deps, 'dead-letter the message', () => deps.transport.deadLetter(delivery, record), record.id);
}
