import { contextStorage } from '@celeriac/core/spi';
import type { Pool, PoolJob } from './pool.js';

/**
 * Runs tasks in the worker's own event loop: right for I/O-bound work.
 * Concurrency is the worker's in-flight limit; a soft time limit reaches the
 * task through `ctx.signal`; there is no hard limit (nothing can stop a loop).
 */
export class AsyncPool implements Pool {
  readonly kind = 'async' as const;
  readonly capabilities = Object.freeze({ hardTimeLimit: false });

  async run({ task, args, ctx }: PoolJob): Promise<unknown> {
    return contextStorage.run(ctx, () => task.fn.apply(ctx, args as unknown[]));
  }

  async close(): Promise<void> {}
}
