import { CeleriacError, ErrorCodes, TaskError, type EncodedException } from '@celeriac/core/spi';

/** The process running a task died before it answered (crash, kill -9, OOM): the task follows the worker-lost rule. */
export class WorkerLostError extends CeleriacError {
  constructor(readonly taskId: string, detail: string) {
    super(ErrorCodes.WORKER_LOST, `Worker exited prematurely running task ${taskId}: ${detail}`, { taskId });
  }
}

/**
 * A process-pool child could not start: its app module did not load (`details.childCode` is the
 * code of the child's error, when it had one) or it exited before it was ready.
 */
export class PoolStartError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.POOL_START_FAILED, message, details, options);
  }
}

/** The hard time limit passed: the child running the task was killed. */
export class TimeLimitExceeded extends CeleriacError {
  constructor(readonly taskId: string, readonly seconds: number) {
    super(ErrorCodes.TIME_LIMIT, `TimeLimitExceeded(${seconds})`, { taskId, seconds });
  }
}

/**
 * A task's own error, thrown in a child process and carried back as data.
 * The child already decided whether it matches `autoretryFor` (error classes
 * cannot cross a process boundary).
 */
export class ChildTaskError extends TaskError {
  constructor(
    taskId: string,
    exc: EncodedException & { exc_code?: unknown },
    traceback: string | null,
    readonly autoretry: boolean,
  ) {
    super({ taskId, excType: exc.exc_type, excModule: exc.exc_module, excArgs: exc.exc_message, traceback });
  }
}
