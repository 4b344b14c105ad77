import { CeleriacError, ErrorCodes, safeString, toNaiveUtcIso, READY_STATES, type ResultMeta, type TaskHeaders, type TaskState, type EncodedException } from '@celeriac/core';

/** Exceptions Celery itself raises, encoded as Celery encodes them (so Python clients see the real types). */
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
} as const;

/** A `celery-task-meta-<id>` record for a task in `status`. */
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
    throw new CeleriacError(ErrorCodes.RESULT_NOT_SERIALIZABLE, `Task result cannot be stored as JSON (${(err as Error).message}): ${safeString(value)}`);
  }
  if (text === undefined) {
    throw new CeleriacError(ErrorCodes.RESULT_NOT_SERIALIZABLE, `Task result cannot be stored as JSON: ${safeString(value)}`);
  }
  return value;
}
