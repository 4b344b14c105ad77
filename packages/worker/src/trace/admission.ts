import {
  fromWire,
  parseCeleryIso,
  PayloadTooLargeError,
  resolveCallArgs,
  UnknownTaskError,
  wireSize,
  type RegisteredTask,
  type TaskMessage,
  type WireMessage,
} from '@celeriac/core/spi';
import type { RunTimeLimits } from '../state.js';

/**
 * Admission: what to do with a delivery before anything runs — a pure decision
 * (refuse | poison | park | skip | wait for a rate slot | run) made from the
 * message and what the worker knows. It writes nothing and sends nothing; the
 * pipeline acts on the decision. The one side effect is booking a rate-limit
 * slot, through the `reserveSlot` it is given, for a task that is about to run.
 */

/** Marks a message re-sent to wait for its booked rate-limit slot (epoch ms): it holds that slot already. */
export const RATE_SLOT_HEADER = 'x-celeriac-rate-slot';

/** Bad input: recorded as FAILURE (when the id is readable) and dead-lettered with the error's code. */
export interface Refusal {
  readonly kind: 'refuse';
  readonly id: string | undefined;
  readonly taskName: string | null;
  readonly error: unknown;
  /** The decoded message, when it decoded (its errbacks and chord then hear of the failure). */
  readonly message?: TaskMessage;
}

export type Decoded = { readonly kind: 'decoded'; readonly message: TaskMessage } | Refusal;

/** Size check, then decode and validate the wire message. */
export function decodeDelivery(wire: WireMessage, maxPayloadBytes: number): Decoded {
  const id = typeof wire.headers.id === 'string' ? wire.headers.id : undefined;
  const named = typeof wire.headers.task === 'string' ? wire.headers.task : null;
  const size = wireSize(wire, maxPayloadBytes);
  if (size > maxPayloadBytes) return { kind: 'refuse', id, taskName: named ?? 'unknown', error: new PayloadTooLargeError(size, maxPayloadBytes, named ?? 'unknown') };
  try {
    return { kind: 'decoded', message: fromWire(wire) };
  } catch (error) {
    return { kind: 'refuse', id, taskName: named, error };
  }
}

export interface AdmissionContext {
  readonly maxDeliveries: number;
  /** How many times the broker has handed this message out, this time included. */
  readonly deliveryCount: number;
  readonly now: number;
  readonly findTask: (name: string) => RegisteredTask | undefined;
  readonly runTimeLimits: ReadonlyMap<string, RunTimeLimits>;
  readonly isRevoked: (id: string) => boolean;
  /** Book the task's next rate-limit slot: ms to wait for it (0: run now). */
  readonly reserveSlot: (taskName: string, rate: string | undefined) => number;
  /** The broker can hold a message until a time (a future ETA, a rate slot); without it the task runs now. */
  readonly delayedDelivery: boolean;
  /** The pool can enforce a hard time limit (it kills the process): a message's own hard limit then applies. */
  readonly hardLimitsEnforced: boolean;
}

export type Admission =
  | Refusal
  /** Delivered more than `maxDeliveries` times without an ack: each earlier run's worker died running it. */
  | { readonly kind: 'poison'; readonly message: TaskMessage; readonly detail: string }
  /** A future ETA: parked broker-side until then, never held in memory. */
  | { readonly kind: 'park'; readonly message: TaskMessage; readonly eta: number }
  | { readonly kind: 'skip'; readonly message: TaskMessage; readonly reason: 'revoked' | 'expired' }
  /** Over its rate: back to the broker until its booked slot. */
  | { readonly kind: 'wait-slot'; readonly message: TaskMessage; readonly task: RegisteredTask; readonly waitMs: number }
  | { readonly kind: 'run'; readonly message: TaskMessage; readonly task: RegisteredTask; readonly args: unknown[] };

/** Decide what to do with a decoded message. */
export function admit(message: TaskMessage, ctx: AdmissionContext): Admission {
  const { headers } = message;
  const [args, kwargs] = message.body;
  const found = ctx.findTask(headers.task);
  if (!found) return { kind: 'refuse', id: headers.id, taskName: headers.task, error: new UnknownTaskError(headers.task), message };
  const task = withLimits(found, headers.timelimit[0], ctx);
  if (ctx.deliveryCount > ctx.maxDeliveries) {
    const detail = `Worker exited prematurely: delivered ${ctx.deliveryCount - 1} times without finishing (maxDeliveries ${ctx.maxDeliveries})`;
    return { kind: 'poison', message, detail };
  }
  const eta = headers.eta ? parseCeleryIso(headers.eta) : NaN;
  // A few ms of clock skew are not worth a round trip through the broker.
  if (eta > ctx.now + 5 && ctx.delayedDelivery) return { kind: 'park', message, eta };
  if (ctx.isRevoked(headers.id)) return { kind: 'skip', message, reason: 'revoked' };
  const expires = headers.expires ? parseCeleryIso(headers.expires) : NaN;
  if (expires <= ctx.now) return { kind: 'skip', message, reason: 'expired' };
  let callArgs: unknown[];
  try {
    callArgs = resolveCallArgs(task, args, kwargs);
  } catch (error) {
    return { kind: 'refuse', id: headers.id, taskName: headers.task, error, message };
  }
  // A message sent back for its rate-limit slot already holds that slot: it runs when it returns.
  const booked = typeof headers[RATE_SLOT_HEADER] === 'number';
  const waitMs = booked ? 0 : ctx.reserveSlot(task.name, task.options.rateLimit);
  if (waitMs > 0 && ctx.delayedDelivery) return { kind: 'wait-slot', message, task, waitMs };
  return { kind: 'run', message, task, args: callArgs };
}

/**
 * The task with the hard limit it runs under: one set at run time by remote control wins; else the
 * message's own (set per call, from the task's options when sent, or a Python client's `time_limit`)
 * where the pool can enforce it. Soft limits set at run time are applied here too; a message's soft
 * limit is read when the task starts.
 */
function withLimits(task: RegisteredTask, messageHardS: number | null, ctx: Pick<AdmissionContext, 'runTimeLimits' | 'hardLimitsEnforced'>): RegisteredTask {
  const set: RunTimeLimits | undefined = ctx.runTimeLimits.size ? ctx.runTimeLimits.get(task.name) : undefined;
  const messageHard = set?.hard === undefined && ctx.hardLimitsEnforced && messageHardS !== null ? messageHardS * 1000 : undefined;
  if (!set && (messageHard === undefined || messageHard === task.options.timeLimit)) return task;
  const options = { ...task.options };
  if (messageHard !== undefined) options.timeLimit = messageHard;
  if (set?.hard !== undefined) options.timeLimit = set.hard ?? undefined;
  if (set?.soft !== undefined) options.softTimeLimit = set.soft ?? undefined;
  return { ...task, options: Object.freeze(options) };
}
