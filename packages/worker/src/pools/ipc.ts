import type { EncodedException, TaskContext } from '@celeriac/core/spi';

/** The data part of a task's `ctx`, sent to the child that rebuilds it. */
export type ChildContext = Pick<TaskContext, 'id' | 'name' | 'retries' | 'rootId' | 'parentId' | 'groupId' | 'hostname' | 'args' | 'kwargs'>;

/** Parent → child. */
export type ToChild =
  | { type: 'run'; jobId: number; taskName: string; args: unknown[]; ctx: ChildContext; /** Send the task's log lines back (task events are on). */ logs?: boolean }
  | { type: 'abort'; jobId: number; reason: 'soft' | 'terminate' | 'shutdown'; seconds?: number }
  | { type: 'exit' };

/** Child → parent. */
export type FromChild =
  | { type: 'ready' }
  | { type: 'fatal'; message: string; code?: string }
  | { type: 'update-state'; jobId: number; state: string; meta: unknown }
  | { type: 'log'; jobId: number; level: string; msg: string; at: number }
  | { type: 'done'; jobId: number; rss: number; ok: true; value: unknown }
  | {
      type: 'done';
      jobId: number;
      rss: number;
      ok: false;
      retry: { countdown?: number; maxRetries?: number } | null;
      exc: EncodedException;
      traceback: string | null;
      autoretry: boolean;
    };
