import { keepFailure } from './failed.js';
import {
  CELERY_EXCEPTIONS,
  CeleriacError,
  continueAfter,
  encodeException,
  ErrorCodes,
  newId,
  resendOptionsOf,
  resultMeta,
  RetryRequested,
  tracebackOf,
  type Delivery,
  type RegisteredTask,
  type TaskMessage,
} from '@celeriac/core/spi';
import { ChildTaskError } from '../pools/errors.js';
import { retryDelay, shouldAutoretry } from '../retry.js';
import { RATE_SLOT_HEADER, type Refusal } from './admission.js';
import type { TraceDeps } from './deps.js';
import type { Execution } from './execute.js';
import { ack, continuation, keep, redeliveryDelayMs, stillOwned, store } from './steps.js';

/**
 * Outcome: record what admission decided or how a run ended — the state where
 * the caller reads it, a retry, a dead-letter entry — then continue the canvas
 * (core's {@link continueAfter}) and ack. Every step is kept ({@link keep}).
 */

/** Options that resend `message` as itself (a retry, a parked ETA, a rate slot), less the rate-slot mark. */
function resendOptions(message: TaskMessage, delivery: Delivery) {
  return resendOptionsOf(message, { queue: delivery.queue, properties: delivery.message.properties }, [RATE_SLOT_HEADER]);
}

/**
 * Bad input: record FAILURE with the reason (when the id is readable, so a
 * waiting caller gets an answer) and move the message to the dead-letter store.
 */
export async function refuse(deps: TraceDeps, delivery: Delivery, r: Refusal): Promise<void> {
  const { id, taskName, error, message } = r;
  const reason = error instanceof CeleriacError ? error.code : ErrorCodes.MESSAGE_MALFORMED;
  const text = error instanceof Error ? error.message : String(error);
  if (id) {
    const exc = encodeException(error);
    await store(deps, delivery, resultMeta(message?.headers ?? { id, group: null, parent_id: null }, 'FAILURE', exc, tracebackOf(error)));
    if (message) await continueAfter(continuation(deps), message, { state: 'FAILURE', result: exc });
  }
  if (reason === ErrorCodes.TASK_UNKNOWN && taskName !== null) {
    // One warning per unknown name (a rolling deploy can send thousands), then a count at debug level.
    const seen = deps.state.countUnknown(taskName);
    if (seen === 1) deps.log.warn({ task: taskName }, `unregistered task ${JSON.stringify(taskName)}: messages go to the dead-letter store (requeue them once a worker knows it)`);
    else deps.log.debug({ taskId: id, task: taskName, seen }, 'unregistered task dead-lettered');
  } else {
    deps.log.error({ taskId: id, task: taskName, reason }, `message refused: ${text}`);
  }
  deps.events.emit('task-rejected', { id: id ?? null, name: taskName, reason });
  const record = { id: id ?? newId(), taskName, reason, message: text, traceback: tracebackOf(error), failedAt: Date.now() };
  // With early acks the delivery is already settled: every transport then writes the record alone
  // (its ack is a no-op once settled).
  await keep(deps, 'dead-letter the message', () => deps.transport.deadLetter(delivery, record), record.id);
}

/** Delivered too often without an ack: FAILURE (Celery's WorkerLostError) and a dead letter, never another run. */
export async function poison(deps: TraceDeps, delivery: Delivery, message: TaskMessage, detail: string): Promise<void> {
  const { headers } = message;
  const exc = CELERY_EXCEPTIONS.workerLost(detail);
  await store(deps, delivery, resultMeta(headers, 'FAILURE', exc));
  await continueAfter(continuation(deps), message, { state: 'FAILURE', result: exc });
  const record = { id: headers.id, taskName: headers.task, reason: ErrorCodes.WORKER_LOST, message: detail, traceback: null, failedAt: Date.now() };
  await keep(deps, 'dead-letter the message', () => deps.transport.deadLetter(delivery, record), headers.id);
  deps.events.emit('task-rejected', { id: headers.id, name: headers.task, reason: ErrorCodes.WORKER_LOST });
}

/** Send the message back to the broker to arrive at `eta` (a future ETA, a booked rate slot), then ack this copy. */
export type SendBackWhen =
  | { readonly eta: number }
  | { readonly slotAt: number; readonly countdown: number }
  /** Waiting for a fleet-wide slot or lease: these headers go with it. */
  | { readonly countdown: number; readonly headers: Readonly<Record<string, unknown>>; readonly why: string };

export async function sendBack(deps: TraceDeps, delivery: Delivery, message: TaskMessage, when: SendBackWhen): Promise<void> {
  const { headers } = message;
  const [args, kwargs] = message.body;
  const options = resendOptions(message, delivery);
  const base = { ...options, taskId: headers.id, retries: headers.retries };
  const later =
    'eta' in when
      ? { ...base, eta: when.eta }
      : 'slotAt' in when
        ? { ...base, headers: { ...options.headers, [RATE_SLOT_HEADER]: when.slotAt }, countdown: when.countdown }
        : { ...base, headers: { ...options.headers, ...when.headers }, countdown: when.countdown };
  const what = 'eta' in when ? 'park the message until its eta' : 'slotAt' in when ? 'send the message back for its rate-limit slot' : when.why;
  await keep(deps, what, () => deps.app.sendTask(headers.task, args, kwargs, later), headers.id);
  await ack(deps, delivery, headers.id);
}

/** Revoked or expired: REVOKED stored (and given to a stopped chain and chord), never run. */
export async function skip(deps: TraceDeps, delivery: Delivery, message: TaskMessage, reason: 'revoked' | 'expired'): Promise<void> {
  const { headers } = message;
  const exc = CELERY_EXCEPTIONS.revoked(reason);
  await store(deps, delivery, resultMeta(headers, 'REVOKED', exc));
  await continueAfter(continuation(deps), message, { state: 'REVOKED', result: exc });
  deps.log.info({ taskId: headers.id, task: headers.task, reason }, 'task skipped');
  deps.events.emit('task-revoked', { id: headers.id, name: headers.task, reason });
  await ack(deps, delivery, headers.id);
}

/** Record how a run ended. `settle` acks a late-acked delivery (a no-op when it was acked early). */
export async function recordExecution(
  deps: TraceDeps,
  delivery: Delivery,
  run: { readonly task: RegisteredTask; readonly message: TaskMessage; readonly receivedAt: number },
  execution: Execution,
  settle: () => Promise<void>,
): Promise<void> {
  const { task, message } = run;
  const { headers } = message;
  const id = headers.id;
  switch (execution.kind) {
    case 'lost': {
      // Reject-on-worker-lost: the message goes back after a doubling pause; its delivery count
      // decides when it is a poison message.
      const delayMs = redeliveryDelayMs(delivery);
      deps.log.error({ taskId: id, task: task.name, deliveryCount: delivery.deliveryCount, redeliverInMs: delayMs }, execution.error.message);
      await keep(deps, 'return the message to its queue', () => delivery.reject({ requeue: true, delayMs }), id);
      return;
    }
    case 'interrupted':
      if (execution.by === 'terminate') return skip(deps, delivery, message, 'revoked');
      // Cold shutdown: not the task's failure. Give it back to run elsewhere.
      await keep(deps, 'return the message to its queue', () => delivery.reject({ requeue: true }), id);
      return;
    case 'time-limit': {
      if (!(await stillOwned(deps, delivery, id))) return;
      const exc = CELERY_EXCEPTIONS.timeLimit(execution.seconds);
      await store(deps, delivery, resultMeta(headers, 'FAILURE', exc));
      deps.log.error({ taskId: id, task: task.name }, `hard time limit (${execution.seconds} s) exceeded: child killed`);
      deps.events.emit('task-failed', { id, name: task.name, exception: exc, traceback: null });
      await keepFailure(deps, delivery, task, message, { exc, traceback: null, receivedAt: run.receivedAt, startedAt: execution.startedAt });
      await continueAfter(continuation(deps), message, { state: 'FAILURE', result: exc });
      await settle();
      return;
    }
    case 'raised':
      if (!(await stillOwned(deps, delivery, id))) return;
      return onFailure(deps, delivery, task, message, execution.error, settle, { receivedAt: run.receivedAt, startedAt: execution.startedAt });
    case 'done': {
      const { value, runtimeS } = execution;
      if (!(await stillOwned(deps, delivery, id))) return;
      if (!(headers.ignore_result || task.options.ignoreResult)) await store(deps, delivery, resultMeta(headers, 'SUCCESS', value ?? null));
      if (deps.log.isLevelEnabled('info')) deps.log.info({ taskId: id, task: task.name, runtime: runtimeS }, 'task succeeded');
      if (deps.events.listenerCount('task-succeeded')) deps.events.emit('task-succeeded', { id, name: task.name, result: value, runtime: runtimeS });
      // No follow-ups (the common case): no continuation made, no promise.
      const embed = message.body[2];
      if (embed.callbacks?.length || embed.chain?.length || embed.chord) await continueAfter(continuation(deps), message, { state: 'SUCCESS', result: value });
      await settle();
    }
  }
}

/** The task raised: a retry when asked for or allowed (a new message for the same id), else FAILURE. */
async function onFailure(
  deps: TraceDeps,
  delivery: Delivery,
  task: RegisteredTask,
  message: TaskMessage,
  err: unknown,
  settle: () => Promise<void>,
  times: { readonly receivedAt: number; readonly startedAt: number },
): Promise<void> {
  const { headers } = message;
  const id = headers.id;
  const requested = err instanceof RetryRequested ? err : undefined;
  const cause = requested ? (requested.cause_ ?? requested) : err;
  const autoretry = err instanceof ChildTaskError ? err.autoretry : shouldAutoretry(task.options, err);
  if ((requested || autoretry) && headers.retries < (requested?.maxRetries ?? task.options.maxRetries)) {
    const countdown = requested?.countdown ?? retryDelay(task.options, headers.retries);
    // The retry is a new message for the same id, delivered later by the broker — never held here.
    const options = { ...resendOptions(message, delivery), taskId: id, retries: headers.retries + 1, parentId: id, countdown };
    await keep(deps, 'send the retry', () => deps.app.sendTask(task.name, message.body[0], message.body[1], options), id);
    await store(deps, delivery, resultMeta(headers, 'RETRY', encodeException(cause), tracebackOf(cause)));
    deps.log.info({ taskId: id, task: task.name, retries: headers.retries + 1, countdown }, 'task retry scheduled');
    deps.events.emit('task-retried', { id, name: task.name, retries: headers.retries + 1, exception: encodeException(cause), traceback: tracebackOf(cause) });
    await settle();
    return;
  }
  const exc = encodeException(cause);
  await store(deps, delivery, resultMeta(headers, 'FAILURE', exc, tracebackOf(cause)));
  deps.log.warn({ taskId: id, task: task.name, excType: exc.exc_type, err: cause }, 'task failed');
  deps.events.emit('task-failed', { id, name: task.name, exception: exc, traceback: tracebackOf(cause) });
  await keepFailure(deps, delivery, task, message, { exc, traceback: tracebackOf(cause), ...times });
  await continueAfter(continuation(deps), message, { state: 'FAILURE', result: exc });
  await settle();
}
