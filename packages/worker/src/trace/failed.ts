import { CapabilityError, type EncodedException, type RegisteredTask, type ResultBackend, type TaskMessage } from '@celeriac/core/spi';
import type { Delivery } from '@celeriac/core/spi';
import type { TraceDeps } from './deps.js';

/**
 * The failed-task registry (RQ's FailedJobRegistry): a task that raised with
 * no retry left is kept in the result backend with its message, exception,
 * traceback, worker and times, for `celeriac failed list|show|requeue`.
 */

/** Whether this worker keeps failed tasks: the app's `failedTasks.keep`, where the backend can. */
export function keepsFailed(deps: Pick<TraceDeps, 'app' | 'backend'>, task: RegisteredTask): boolean {
  if (task.options.keepFailed === false) return false;
  const keep = deps.app.config.failedTasks.keep;
  return keep !== false && deps.backend.capabilities.failedRegistry === true;
}

/** `failedTasks.keep: true` on a backend without a registry is refused when the worker starts, not discovered at the first failure. */
export function checkFailedRegistry(keep: boolean | 'auto', backend: ResultBackend): void {
  if (keep === true && !backend.capabilities.failedRegistry) {
    throw new CapabilityError(`failedTasks.keep is true, and the ${backend.kind} result backend has no failed-task registry; use a Redis or SQLite result backend, or keep: 'auto'`, {
      backend: backend.kind,
    });
  }
}

/**
 * Keep the failure. Best effort: the FAILURE result is stored already (the
 * outcome is not lost without this); a registry write that fails is logged.
 */
export async function keepFailure(
  deps: TraceDeps,
  delivery: Delivery,
  task: RegisteredTask,
  message: TaskMessage,
  failure: { readonly exc: EncodedException; readonly traceback: string | null; readonly receivedAt: number; readonly startedAt: number },
): Promise<void> {
  if (!keepsFailed(deps, task)) return;
  const { headers } = message;
  const { maxCount, maxAgeMs } = deps.app.config.failedTasks;
  const excMessage = failure.exc.exc_message.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ');
  try {
    await deps.backend.keepFailed!(
      {
        id: headers.id,
        taskName: task.name,
        queue: delivery.queue,
        wire: delivery.message,
        excType: failure.exc.exc_type,
        excMessage,
        traceback: failure.traceback,
        retries: headers.retries,
        worker: deps.hostname,
        receivedAt: failure.receivedAt,
        startedAt: failure.startedAt,
        endedAt: Date.now(),
      },
      { maxCount, maxAgeMs },
    );
  } catch (err) {
    deps.log.warn({ err, taskId: headers.id, task: task.name }, 'could not keep the failed task in the registry (its FAILURE result is stored)');
  }
}
