import { AsyncLocalStorage } from 'node:async_hooks';
import type { TaskState } from '../protocol/schema.js';
import { RetryRequested } from '../errors.js';

/** The logger a task gets: every line carries its task id and name. */
export interface TaskLogger {
  debug(msg: string, data?: Record<string, unknown>): void;
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
  error(msg: string, data?: Record<string, unknown>): void;
}

/** Options of `ctx.retry()`. */
export interface RetryOptions {
  /** Delay before the retry in ms; default from the task's backoff settings. */
  readonly countdown?: number;
  /** The error that caused it (stored with RETRY, and the final FAILURE when retries run out). */
  readonly exc?: unknown;
  readonly maxRetries?: number;
}

/**
 * What a running task knows about itself (Celery's `self.request`). A task
 * reads it as `this` (a `function`, not an arrow) or from {@link currentTask}.
 */
export interface TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly groupId: string | null;
  /** The worker node running the task (Celery's `request.hostname`, e.g. `celeriac@web-1`); null when called in-process. */
  readonly hostname: string | null;
  /**
   * The message's positional arguments as sent, before keyword arguments are
   * placed (Celery's `request.args`). With {@link kwargs}, a port of a Python
   * `def task(*args, **kwargs)` sees exactly what the caller sent: a trailing
   * positional dict is told apart from keyword arguments.
   */
  readonly args: readonly unknown[];
  /** The message's keyword arguments as sent (Celery's `request.kwargs`); `{}` when there are none. */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** Aborted on soft time limit, revoke with terminate, or cold shutdown. */
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /** Store a custom state (e.g. `PROGRESS`) with metadata, as Celery's `update_state`. */
  updateState(state: TaskState | (string & {}), meta?: unknown): Promise<void>;
  /** Ask for this task to run again later. Throws; `throw ctx.retry()` reads well. */
  retry(options?: RetryOptions): never;
}

export const contextStorage = new AsyncLocalStorage<TaskContext>();

/** The context of the task running in this async scope, if any. */
export function currentTask(): TaskContext | undefined {
  return contextStorage.getStore();
}

/** What every `ctx.retry()` does: throw the request the worker turns into a delayed re-run. */
export function requestRetry(options: RetryOptions = {}): never {
  throw new RetryRequested(options.countdown, options.exc, options.maxRetries);
}
