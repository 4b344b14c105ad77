import type { ResultBackend } from '../backend/backend.js';
import { decodeException } from '../protocol/exceptions.js';
import { EXCEPTION_STATES, READY_STATES, type ResultMeta, type TaskState } from '../protocol/schema.js';
import type { TaskError } from '../errors.js';
import { pollStates, type StateUpdate, type StatesOptions } from './states.js';

/** What an AsyncResult needs from its app: the backend, and revocation. */
export interface ResultHost {
  backend(): Promise<ResultBackend>;
  /** How long saved results (and saved groups) are kept, ms. */
  readonly resultExpires: number;
  revoke(taskIds: readonly string[], options?: { terminate?: boolean }): Promise<void>;
}

export interface GetOptions {
  /** Give up after this many ms with a TimeoutError naming the task id. */
  readonly timeout?: number;
  /** Rethrow a remote failure as TaskError (default). When false, the TaskError is returned instead. */
  readonly propagate?: boolean;
  readonly signal?: AbortSignal;
}

/** Celery's own states; any other stored state is a custom one (`PROGRESS`), whose meta `progress()` returns. */
const BUILTIN_STATES: ReadonlySet<string> = new Set(['PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED']);

/** A handle on one task's outcome (Celery's `AsyncResult`). Every method reads the backend. */
export class AsyncResult<R = unknown> {
  constructor(
    readonly id: string,
    private readonly host: ResultHost,
  ) {}

  /** The stored record, or undefined while PENDING (unknown ids are PENDING too, as in Celery). */
  async meta(): Promise<ResultMeta | undefined> {
    return (await this.host.backend()).get(this.id);
  }

  async state(): Promise<TaskState | (string & {})> {
    return (await this.meta())?.status ?? 'PENDING';
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has((await this.state()) as TaskState);
  }

  async successful(): Promise<boolean> {
    return (await this.state()) === 'SUCCESS';
  }

  async failed(): Promise<boolean> {
    return (await this.state()) === 'FAILURE';
  }

  /** The failure as a TaskError, when the task is in FAILURE, RETRY or REVOKED. */
  async error(): Promise<TaskError | undefined> {
    const meta = await this.meta();
    return meta && EXCEPTION_STATES.has(meta.status as TaskState) ? decodeException(this.id, meta.result, meta.traceback) : undefined;
  }

  /** Wait for the result. A failure rethrows as TaskError (or is returned with `propagate: false`). */
  get(options?: GetOptions & { propagate?: true }): Promise<R>;
  get(options: GetOptions & { propagate: false }): Promise<R | TaskError>;
  async get(options: GetOptions = {}): Promise<R | TaskError> {
    const backend = await this.host.backend();
    const meta = await backend.wait(this.id, {
      ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (meta.status === 'SUCCESS') return meta.result as R;
    const error = decodeException(this.id, meta.result, meta.traceback);
    if (options.propagate === false) return error;
    throw error;
  }

  /**
   * Celery's `info`: what is stored beside the state — a custom state's meta
   * (`{ done: 3, of: 10 }` for PROGRESS), the result, or the stored exception; null while PENDING.
   */
  async info(): Promise<unknown> {
    return (await this.meta())?.result ?? null;
  }

  /** The meta of the task's current custom state (PROGRESS, ...), or null when it is not in one. */
  async progress<P = unknown>(): Promise<P | null> {
    const meta = await this.meta();
    return meta && !BUILTIN_STATES.has(meta.status) ? ((meta.result ?? null) as P | null) : null;
  }

  /**
   * Each state the task is seen in until a ready one, for progress bars:
   * `for await (const s of result.states()) console.log(s.state, s.info)`.
   * Reads the backend every `intervalMs` (default 100), so a state that came
   * and went between two reads is not seen.
   */
  async *states(options: StatesOptions = {}): AsyncGenerator<StateUpdate, void, undefined> {
    yield* pollStates(await this.host.backend(), this.id, options);
  }

  /** Remove the stored result. */
  async forget(): Promise<void> {
    await (await this.host.backend()).forget(this.id);
  }

  /** Revoke: a worker that has not started it skips it; `terminate` also stops it while running. */
  async revoke(options: { terminate?: boolean } = {}): Promise<void> {
    await this.host.revoke([this.id], options);
  }

  toString(): string {
    return this.id;
  }
}
