import { requestRetry, resultMeta, type RegisteredTask, type RetryOptions, type StoreOptions, type TaskContext, type TaskHeaders, type TaskLogger } from '@celeriac/core/spi';
import type { LazyAbort } from '../lazy-abort.js';
import { taskLogger, type Logger } from '../logger.js';
import type { TraceDeps } from './deps.js';

/**
 * A running task's context. A class (methods and lazy getters on the
 * prototype) because one is made per task: the signal and the pino child
 * logger are only built when the task uses them.
 */
export class WorkerTaskContext implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly groupId: string | null;
  readonly hostname: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  private logger: TaskLogger | undefined;

  constructor(
    private readonly deps: Pick<TraceDeps, 'log' | 'backend' | 'hostname' | 'events'> & { readonly log: Logger },
    task: RegisteredTask,
    private readonly headers: TaskHeaders,
    private readonly controller: LazyAbort,
    private readonly storeOptions: StoreOptions,
    body: readonly [readonly unknown[], Readonly<Record<string, unknown>>, ...unknown[]],
  ) {
    [this.args, this.kwargs] = body;
    this.id = headers.id;
    this.name = task.name;
    this.retries = headers.retries;
    this.rootId = headers.root_id;
    this.parentId = headers.parent_id;
    this.groupId = headers.group;
    this.hostname = deps.hostname;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get log(): TaskLogger {
    const book = this.deps.events.logs;
    this.logger ??= taskLogger(this.deps.log, this.id, this.name, book.recording ? (level, msg) => book.append(this.id, level, msg) : undefined);
    return this.logger;
  }

  updateState(state: string, meta?: unknown): Promise<void> {
    return this.deps.backend.store(resultMeta(this.headers, state, meta ?? null), this.storeOptions);
  }

  retry(options: RetryOptions = {}): never {
    return requestRetry(options);
  }
}
