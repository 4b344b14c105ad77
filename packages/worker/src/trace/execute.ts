import { checkResult, SoftTimeLimitExceeded, storableResult, type RegisteredTask, type StoreOptions, type TaskMessage } from '@celeriac/core/spi';
import { LazyAbort } from '../lazy-abort.js';
import { TimeLimitExceeded, WorkerLostError } from '../pools/errors.js';
import { Interrupt } from '../state.js';
import { WorkerTaskContext } from './context.js';
import type { TraceDeps } from './deps.js';

/**
 * Execution: run an admitted task on the pool, with its soft time limit and
 * its abort signal, and say how it ended. Records nothing: the outcome step
 * stores, retries and acks.
 */
export type Execution =
  | { readonly kind: 'done'; readonly value: unknown; readonly runtimeS: number }
  /** The process running it died (a pool child killed, out of memory). */
  | { readonly kind: 'lost'; readonly error: WorkerLostError }
  | { readonly kind: 'time-limit'; readonly seconds: number; readonly startedAt: number }
  /** Aborted by the worker: revoked with terminate, or a cold shutdown. */
  | { readonly kind: 'interrupted'; readonly by: Interrupt['kind'] }
  | { readonly kind: 'raised'; readonly error: unknown; readonly startedAt: number };

export async function execute(
  deps: TraceDeps,
  job: { readonly task: RegisteredTask; readonly message: TaskMessage; readonly args: unknown[]; readonly queue: string; readonly storeOptions: StoreOptions },
): Promise<Execution> {
  const { task, message, args } = job;
  const { headers } = message;
  const { state } = deps;
  const controller = new LazyAbort();
  state.running.set(headers.id, { controller, name: task.name, headers, queue: job.queue, startedAt: Date.now() });
  const ctx = new WorkerTaskContext(deps, task, headers, controller, job.storeOptions, message.body);
  if (deps.events.listenerCount('task-started')) deps.events.emit('task-started', { id: headers.id, name: task.name });
  const started = performance.now();
  const startedAt = Date.now();
  // A soft limit set at run time (already in task.options) wins over the message's; no lookup when none is set.
  const runTimeSoft = state.timeLimits.size > 0 && state.timeLimits.get(task.name)?.soft !== undefined;
  const softMs = runTimeSoft || headers.timelimit[1] === null ? task.options.softTimeLimit : headers.timelimit[1] * 1000;
  const softTimer = softMs !== undefined ? setTimeout(() => controller.abort(new SoftTimeLimitExceeded(softMs / 1000)), softMs) : undefined;
  try {
    const value = storableResult(checkResult(task, await deps.pool.run({ task, args, ctx, onLog: deps.events.logs.recording ? (level, msg, at) => deps.events.logs.append(headers.id, level, msg, at) : undefined })));
    return { kind: 'done', value, runtimeS: (performance.now() - started) / 1000 };
  } catch (error) {
    if (error instanceof WorkerLostError) return { kind: 'lost', error };
    if (error instanceof TimeLimitExceeded) return { kind: 'time-limit', seconds: error.seconds, startedAt };
    const interrupt: unknown = controller.reason;
    if (interrupt instanceof Interrupt) return { kind: 'interrupted', by: interrupt.kind };
    return { kind: 'raised', error, startedAt };
  } finally {
    clearTimeout(softTimer);
    state.running.delete(headers.id);
  }
}

