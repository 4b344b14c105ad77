import { toNaiveUtcIso, READY_STATES, type ResultMeta, type TaskHeaders, type TaskState, type EncodedException } from '@celeriac/core';

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
