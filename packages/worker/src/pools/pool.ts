import type { RegisteredTask, TaskContext } from '@celeriac/core/spi';

/** One task run handed to a pool. */
export interface PoolJob {
  readonly task: RegisteredTask;
  readonly args: readonly unknown[];
  readonly ctx: TaskContext;
  /** Keep a line the task wrote with `this.log` in another process (set only while task events are on). */
  readonly onLog?: ((level: string, msg: string, at: number) => void) | undefined;
}

/** What a pool can enforce, declared as data and checked when the worker starts. */
export interface PoolCapabilities {
  /** Can stop a task that ignores its abort signal (by killing the process running it). */
  readonly hardTimeLimit: boolean;
}

/** Runs tasks. `async` runs them in the worker's event loop; `process` in child processes. */
export interface Pool {
  readonly kind: 'async' | 'process';
  readonly capabilities: PoolCapabilities;
  /** Prepare (spawn children, load the module) before the worker consumes anything. */
  start?(): Promise<void>;
  /** Runs the task; rejects with the task's error, or a `WorkerLostError` / `TimeLimitExceeded` when the pool itself lost it or killed it. */
  run(job: PoolJob): Promise<unknown>;
  /** Change how many tasks run at once (`pool_grow` / `pool_shrink`); a pool without it follows the worker's slots. */
  resize?(size: number): Promise<void>;
  /** Cold shutdown: stop whatever runs now (kill children). */
  interruptAll?(): Promise<void>;
  close(): Promise<void>;
}
