import { APPLY_OPTION_KEYS } from '../canvas/apply.js';
import { Signature } from '../canvas/signature.js';
import { ArgumentError } from '../errors.js';
import type { AsyncResult } from '../result/async-result.js';
import { sent, type Sent } from '../result/sent.js';
import type { CallOptions, MessageOptions, ResolvedTaskOptions } from './options.js';
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
  /**
   * Send with positional args; resolves once the broker accepted the message.
   * `.get()` on it waits for the result in one step: `await add.delay(1, 2).get({ timeout: 3000 })`.
   */
  delay(...args: Args): Sent<AsyncResult<Result>>;
  /** Send with options (and keyword arguments in `options.kwargs`): `add.applyAsync([1, 2], { countdown: 10_000 })`. */
  applyAsync(args?: Args, options?: CallOptions): Sent<AsyncResult<Result>>;
  /** @deprecated Pass keyword arguments in the options: `applyAsync(args, { kwargs, ...options })`. */
  applyAsync(args: Args | undefined, kwargs: Readonly<Record<string, unknown>>, options: CallOptions): Sent<AsyncResult<Result>>;
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
  sendTask<R>(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options?: MessageOptions): Promise<AsyncResult<R>>;
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
    delay: (...args: Args) => sent(sender.sendTask<Result>(name, args, {})),
    applyAsync: (args?: Args, second?: CallOptions | Readonly<Record<string, unknown>>, third?: CallOptions) => {
      const [kwargs, options] = third !== undefined ? [(second ?? {}) as Readonly<Record<string, unknown>>, third] : splitCallOptions(second);
      return sent(sender.sendTask<Result>(name, args ?? [], kwargs, options));
    },
    s: (...args: readonly unknown[]) => new Signature({ task: name, args }),
    si: (...args: Args) => new Signature<[], Result>({ task: name, args, immutable: true }),
  } as RemoteTaskHandle<Args, Result>;
}

/** Every key `applyAsync`'s options may hold: a second argument with any other key is the old `kwargs` form. */
const CALL_OPTION_KEYS: ReadonlySet<string> = new Set<keyof CallOptions>(['kwargs', ...APPLY_OPTION_KEYS]);

let warnedKwargsForm = false;

/**
 * `applyAsync(args, options)` — or, as before, `applyAsync(args, kwargs)`: a
 * second argument with keys that are not options is taken as kwargs (once
 * warned as deprecated), so existing calls keep their meaning.
 */
function splitCallOptions(second: CallOptions | Readonly<Record<string, unknown>> | undefined): [Readonly<Record<string, unknown>>, MessageOptions] {
  if (!second) return [{}, {}];
  const keys = Object.keys(second);
  const unknown = keys.filter((k) => !CALL_OPTION_KEYS.has(k));
  if (unknown.length === 0) {
    const { kwargs, ...options } = second as CallOptions;
    return [kwargs ?? {}, options];
  }
  if (unknown.length < keys.length) {
    // Options and other keys together: a misspelt option, or kwargs that share option names. Either
    // way, guessing would silently drop something.
    throw new ArgumentError(
      `applyAsync(args, options): unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (accepted: ${[...CALL_OPTION_KEYS].join(', ')}); pass keyword arguments as { kwargs: {...} }`,
      { unknown },
    );
  }
  if (!warnedKwargsForm) {
    warnedKwargsForm = true;
    process.emitWarning('applyAsync(args, kwargs) is deprecated: pass keyword arguments as applyAsync(args, { kwargs })', { code: 'CELERIAC_DEP_APPLY_KWARGS', type: 'DeprecationWarning' });
  }
  return [second as Readonly<Record<string, unknown>>, {}];
}
