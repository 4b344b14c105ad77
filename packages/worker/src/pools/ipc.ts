import type { EncodedException } from '@celeriac/core';

/** Context fields a child needs to rebuild a task's `ctx`. */
export interface ChildContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly groupId: string | null;
}

/** Parent → child. */
export type ToChild =
  | { type: 'run'; jobId: number; taskName: string; args: unknown[]; ctx: ChildContext }
  | { type: 'abort'; jobId: number; reason: 'soft' | 'terminate' | 'shutdown'; seconds?: number }
  | { type: 'exit' };

/** Child → parent. */
export type FromChild =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'update-state'; jobId: number; state: string; meta: unknown }
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
