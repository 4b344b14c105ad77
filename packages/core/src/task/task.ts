import { Signature } from '../canvas/signature.js';
import type { AsyncResult } from '../result/async-result.js';
import type { ApplyOptions, ResolvedTaskOptions } from './options.js';
import type { DropSuffix, SuffixOf } from './types.js';

/**
 * The typed handle `app.task()` returns. `Args` and `Result` come from the
 * task function (or its zod schemas), so a wrong call fails to compile.
 */
export interface TaskHandle<Args extends readonly unknown[], Result> {
  /** Run the function here and now, in this process (Celery's `add(1, 1)`). */
  (...args: Args): Promise<Result>;
  readonly taskName: string;
  readonly options: ResolvedTaskOptions;
  /** Send with positional args; resolves once the broker accepted the message. */
  delay(...args: Args): Promise<AsyncResult<Result>>;
  applyAsync(args?: Args, kwargs?: Readonly<Record<string, unknown>>, options?: ApplyOptions): Promise<AsyncResult<Result>>;
  /**
   * A partial signature. As in Celery, its args come after the parent's result,
   * which is prepended at run time: `mul.s(8)` runs as `mul(parentResult, 8)`,
   * so it still waits for the leading args.
   */
  s<P extends SuffixOf<Args>>(...args: P): Signature<DropSuffix<Args, P>, Result>;
  /** An immutable signature: it ignores its parent's result. */
  si(...args: Args): Signature<[], Result>;
}

/** A handle for a task implemented elsewhere (another service, or Python): send-only, no local call. */
export type RemoteTaskHandle<Args extends readonly unknown[], Result> = Omit<TaskHandle<Args, Result>, 'options'>;

/** What a handle needs from its app. */
export interface TaskSender {
  sendTask<R>(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options?: ApplyOptions): Promise<AsyncResult<R>>;
}

export function makeTaskHandle<Args extends readonly unknown[], Result>(
  sender: TaskSender,
  options: ResolvedTaskOptions,
  runLocal: (args: Args) => Promise<Result>,
): TaskHandle<Args, Result> {
  const handle = (...args: Args): Promise<Result> => runLocal(args);
  return Object.assign(handle, { options }, remoteTaskHandle<Args, Result>(sender, options.name));
}

/** The sending half of a handle: all a task implemented elsewhere needs. */
export function remoteTaskHandle<Args extends readonly unknown[], Result>(sender: TaskSender, name: string): RemoteTaskHandle<Args, Result> {
  return {
    taskName: name,
    delay: (...args: Args) => sender.sendTask<Result>(name, args, {}),
    applyAsync: (args?: Args, kwargs?: Readonly<Record<string, unknown>>, applyOptions?: ApplyOptions) =>
      sender.sendTask<Result>(name, args ?? [], kwargs ?? {}, applyOptions),
    s: (...args: readonly unknown[]) => new Signature({ task: name, args }),
    si: (...args: Args) => new Signature<[], Result>({ task: name, args, immutable: true }),
  } as RemoteTaskHandle<Args, Result>;
}
