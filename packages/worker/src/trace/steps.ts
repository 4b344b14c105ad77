import { ErrorCodes, LeaseLostError, type Continuation, type Delivery, type ResultMeta, type StoreOptions } from '@celeriac/core/spi';
import { persist, PersistHalted } from '../persist.js';
import type { TraceDeps } from './deps.js';

/**
 * The steps that record an outcome, each retried on its own while the broker
 * or backend is away ({@link persist}), and the checks around them.
 */

/** {@link persist} with this worker's log and halt signal. */
export function keep<T>(deps: Pick<TraceDeps, 'log' | 'halt'>, what: string, step: () => Promise<T>, taskId?: string): Promise<T> {
  return persist(step, { log: deps.log, halt: deps.halt, what, ...(taskId ? { fields: { taskId } } : {}) });
}

/** Where and for how long a state is stored: `rpc://` replies to the message's `reply_to`. */
export function storeOptionsOf(deps: Pick<TraceDeps, 'app'>, delivery: Delivery): StoreOptions {
  const replyTo = delivery.message.properties.reply_to;
  return { expiresMs: deps.app.config.resultExpires, replyTo: typeof replyTo === 'string' ? replyTo : undefined };
}

/** Store a task's state where its caller reads it, retried while the backend is away. */
export function store(deps: TraceDeps, delivery: Delivery, meta: ResultMeta): Promise<void> {
  return keep(deps, `store the ${meta.status} state`, () => deps.backend.store(meta, storeOptionsOf(deps, delivery)), meta.task_id);
}

export function ack(deps: TraceDeps, delivery: Delivery, id: string): Promise<void> {
  return keep(deps, 'ack', () => delivery.ack(), id);
}

/** The canvas continues through the app, each of its steps kept like the worker's own. */
export function continuation(deps: TraceDeps): Continuation {
  return {
    host: deps.app,
    step: (what, step, taskId) => keep(deps, what, step, taskId),
    warn: (fields, message) => deps.log.warn(fields, message),
  };
}

/**
 * Before a result is written: is this delivery still ours? A worker paused past its lease
 * (SIGSTOP, a long GC, a frozen VM) finds the task handed to another worker, and must write
 * neither a result nor an ack (Kleppmann's fencing: the other run's outcome stands).
 */
export async function stillOwned(deps: TraceDeps, delivery: Delivery, id: string): Promise<boolean> {
  if (!delivery.leaseHeld) return true;
  const held = await keep(deps, 'check the lease', () => delivery.leaseHeld!(), id);
  if (!held) deps.log.warn({ taskId: id, code: ErrorCodes.LEASE_LOST }, 'LEASE_LOST: this delivery\'s lease lapsed (the worker was paused or cut off) and another worker was handed it; no result and no ack are written for it here');
  return held;
}

/** A doubling pause before a message comes back (a crash loop must not spin); its delivery count ends a loop. */
export function redeliveryDelayMs(delivery: Delivery): number {
  return Math.min(60_000, 1000 * 2 ** (delivery.deliveryCount - 1));
}

/**
 * The outcome could not be recorded for good. A lost lease means another worker has the message
 * now; a worker going cold leaves it to the broker (unacked: it comes back). Anything else is a
 * permanent error in a follow-up: the message goes back after a doubling pause (as a crash would,
 * so its delivery count ends a loop) rather than in a tight loop.
 */
export async function giveBack(deps: TraceDeps, delivery: Delivery, err: unknown): Promise<void> {
  const id = typeof delivery.message.headers.id === 'string' ? delivery.message.headers.id : undefined;
  if (err instanceof LeaseLostError) {
    deps.log.warn({ taskId: id, code: err.code }, `${err.message}: another worker owns this task now; its outcome here is dropped`);
    return;
  }
  if (err instanceof PersistHalted) {
    deps.log.warn({ taskId: id, err }, 'worker stopping with a task outcome unrecorded: the message stays unacknowledged and returns to the queue');
    return;
  }
  const delayMs = redeliveryDelayMs(delivery);
  deps.log.error({ err, taskId: id, queue: delivery.queue, redeliverInMs: delayMs }, 'could not record the outcome of a task; returning it to the queue');
  await keep(deps, 'return the message to its queue', () => delivery.reject({ requeue: true, delayMs }), id).catch((again: unknown) => {
    deps.log.error({ err: again, taskId: id }, 'could not return the message; it comes back after the visibility window');
  });
}
