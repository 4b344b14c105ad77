import { CeleriacError, ErrorCodes } from '../errors.js';
import { safeString } from '../protocol/exceptions.js';
import { READY_STATES, type EncodedException, type ResultMeta, type TaskHeaders, type TaskState } from '../protocol/schema.js';
import { toNaiveUtcIso } from '../util/time.js';

/**
 * Exceptions Celery itself records, encoded as Celery encodes them (so Python
 * clients see the real types). One builder each: the worker, the chord join and
 * the `celery.chord_unlock` builtin all write the same records.
 */
export const CELERY_EXCEPTIONS = {
  revoked: (reason: 'revoked' | 'expired'): EncodedException => ({
    exc_type: 'TaskRevokedError',
    exc_message: [reason],
    exc_module: 'celery.exceptions',
  }),
  workerLost: (detail: string): EncodedException => ({
    exc_type: 'WorkerLostError',
    exc_message: [detail],
    exc_module: 'billiard.exceptions',
  }),
  timeLimit: (seconds: number): EncodedException => ({
    exc_type: 'TimeLimitExceeded',
    exc_message: [seconds],
    exc_module: 'billiard.exceptions',
  }),
  /**
   * A chord body that will not run because header member `memberId` ended in
   * `state` with `result` (its encoded exception, when it has one): Celery's
   * `ChordError('Dependency <id> raised <Type>(<message>)')`.
   */
  chordError: (memberId: string, state: string, result: unknown): EncodedException => {
    const cause = result as { exc_type?: unknown; exc_message?: unknown } | null;
    const type = typeof cause?.exc_type === 'string' ? cause.exc_type : state;
    const first: unknown = Array.isArray(cause?.exc_message) ? cause.exc_message[0] : '';
    return { exc_type: 'ChordError', exc_message: [`Dependency ${memberId} raised ${type}(${JSON.stringify(first ?? '')})`], exc_module: 'celery.exceptions' };
  },
} as const;

/** A `celery-task-meta-<id>` record for a task in `status` (`date_done` set once the state is final). */
export function resultMeta(
  headers: Pick<TaskHeaders, 'id' | 'group' | 'parent_id'>,
  status: TaskState | (string & {}),
  result: unknown,
  traceback: string | null = null,
): ResultMeta {
  return {
    status,
    result,
    traceback,
    children: [],
    date_done: READY_STATES.has(status as TaskState) ? toNaiveUtcIso(Date.now()) : null,
    task_id: headers.id,
    ...(headers.group ? { group_id: headers.group } : {}),
    ...(headers.parent_id ? { parent_id: headers.parent_id } : {}),
  };
}

/**
 * The value as it will be stored, or an error when JSON cannot hold it
 * (BigInt, Symbol, a function, a circular object): such a return is the task's
 * FAILURE with a readable, truncated description, not a stuck message.
 */
export function storableResult(value: unknown): unknown {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new CeleriacError(ErrorCodes.RESULT_NOT_SERIALIZABLE, `Task result cannot be stored as JSON (${(err as Error).message}): ${safeString(value)}`, {}, { cause: err });
  }
  if (text === undefined) {
    throw new CeleriacError(ErrorCodes.RESULT_NOT_SERIALIZABLE, `Task result cannot be stored as JSON: ${safeString(value)}`);
  }
  return value;
}
