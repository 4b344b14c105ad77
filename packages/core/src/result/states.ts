import type { ResultBackend } from '../backend/backend.js';
import { TimeoutError } from '../errors.js';
import { READY_STATES, type ResultMeta, type TaskState } from '../protocol/schema.js';

/** One state a task went through, as {@link AsyncResult.states} yields it. */
export interface StateUpdate {
  /** PENDING, STARTED, a custom state such as PROGRESS, then SUCCESS / FAILURE / REVOKED. */
  readonly state: TaskState | (string & {});
  /** Celery's `info`: the custom state's meta (`{ done: 3 }`), the result, or the stored exception. */
  readonly info: unknown;
  /** Whether this is the last one (a ready state). */
  readonly ready: boolean;
}

export interface StatesOptions {
  /** How often the backend is read, ms (default 100). */
  readonly intervalMs?: number;
  /** Give up after this many ms with a TimeoutError naming the task id; undefined waits for a ready state. */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

/**
 * Each state a task is seen in, from the backend, until a ready one. Reads
 * the backend every `intervalMs` and yields when state or info changed:
 * states that came and went between two reads are not seen (the backend
 * keeps only the latest), which is why progress meta should say how far it
 * got rather than what changed.
 */
export async function* pollStates(backend: ResultBackend, taskId: string, options: StatesOptions = {}): AsyncGenerator<StateUpdate, void, undefined> {
  const interval = options.intervalMs ?? 100;
  const deadline = options.timeout !== undefined ? Date.now() + options.timeout : Infinity;
  let last: string | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const meta: ResultMeta | undefined = await backend.get(taskId);
    const state = meta?.status ?? 'PENDING';
    const info = meta?.result ?? null;
    const key = JSON.stringify([state, info]);
    const ready = READY_STATES.has(state as TaskState);
    if (key !== last) {
      last = key;
      yield { state, info, ready };
    }
    if (ready) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(`task ${taskId} not ready after ${options.timeout} ms (last state ${state})`, { taskId, state });
    await pause(Math.min(interval, left), options.signal);
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
