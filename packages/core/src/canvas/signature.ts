import type { ApplyOptions, SignatureLike } from '../task/options.js';
import { signatureOptionsOf } from './apply.js';
import type { DropPrefix, PrefixOf } from '../task/types.js';

/** Options as a signature carries them (Celery's signature `options`, snake_case, seconds): routing, ids, links. */
export type SignatureOptions = Readonly<Record<string, unknown>> & {
  readonly queue?: string;
  readonly priority?: number;
  /** Seconds, as on the wire (`set()` takes milliseconds). */
  readonly countdown?: number;
  readonly task_id?: string;
  readonly link?: readonly SignatureLike[];
  readonly link_error?: readonly SignatureLike[];
};

/**
 * A task call as an immutable value: exactly Celery's wire shape
 * `{task, args, kwargs, options, subtask_type, immutable}` — `JSON.stringify`
 * of a Signature is what goes inside a message. `Args` are the arguments still
 * to come (a partial waits for its parent's result), `Result` what it returns.
 */
export class Signature<Args extends readonly unknown[] = unknown[], Result = unknown> implements SignatureLike {
  readonly task: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly options: SignatureOptions;
  readonly subtask_type: string | null;
  readonly immutable: boolean;
  /** Type-level only: the args still to come and the result. Never set at run time. */
  declare readonly __types?: { args: Args; result: Result };

  constructor(init: {
    task: string;
    args?: readonly unknown[];
    kwargs?: Readonly<Record<string, unknown>>;
    options?: SignatureOptions;
    subtask_type?: string | null;
    immutable?: boolean;
  }) {
    this.task = init.task;
    this.args = Object.freeze([...(init.args ?? [])]);
    this.kwargs = Object.freeze({ ...init.kwargs });
    this.options = Object.freeze({ ...init.options });
    this.subtask_type = init.subtask_type ?? null;
    this.immutable = init.immutable ?? false;
    Object.freeze(this);
  }

  /** Read a signature dict (e.g. from a message's embed). */
  static from<A extends readonly unknown[] = unknown[], R = unknown>(dict: SignatureLike): Signature<A, R> {
    return new Signature<A, R>(dict);
  }

  /**
   * A copy with options merged in (Celery's `.set()`): the same camelCase,
   * milliseconds options as `applyAsync` (`set({ queue: 'math', countdown: 5000, taskId })`),
   * converted to the wire's form in one place. Celery's snake_case keys
   * (`set({ link_error: [...] })`) are kept as they are.
   */
  set(options: ApplyOptions | SignatureOptions): Signature<Args, Result> {
    return new Signature<Args, Result>({ ...this, options: { ...this.options, ...signatureOptionsOf(options) } });
  }

  /**
   * A copy with args prepended (the leading args it still waits for) and
   * kwargs/options merged — Celery's `clone`. Immutable signatures ignore args.
   */
  clone<P extends PrefixOf<Args>>(
    args?: P,
    kwargs?: Readonly<Record<string, unknown>>,
    options?: SignatureOptions,
  ): Signature<DropPrefix<Args, P>, Result> {
    return new Signature({
      ...this,
      args: this.immutable ? this.args : [...(args ?? []), ...this.args],
      kwargs: { ...this.kwargs, ...kwargs },
      options: { ...this.options, ...options },
    });
  }

  /**
   * Celery's `|`: this, then `next` with this one's result prepended. Chains
   * flatten: `a.pipe(b).pipe(c)` is `chain(a, b, c)`.
   */
  pipe<R2>(next: Signature<[Result], R2> | Signature<[], R2>): Signature<Args, R2> {
    const steps = this.subtask_type === 'chain' ? (this.kwargs.tasks as SignatureLike[]) : [this.toJSON()];
    return new Signature<Args, R2>({ task: 'celery.chain', kwargs: { tasks: [...steps, next.toJSON()] }, subtask_type: 'chain' });
  }

  /** The plain dict, for JSON (same keys as the instance). */
  toJSON(): SignatureLike {
    return {
      task: this.task,
      args: this.args,
      kwargs: this.kwargs,
      options: this.options,
      subtask_type: this.subtask_type,
      immutable: this.immutable,
    };
  }
}

/** Normalise one-or-many signatures to a list of plain dicts for the wire. */
export function signatureList(value: SignatureLike | readonly SignatureLike[] | undefined): SignatureLike[] | null {
  if (value === undefined) return null;
  const list = Array.isArray(value) ? (value as readonly SignatureLike[]) : [value as SignatureLike];
  return list.map((s) => (s instanceof Signature ? s.toJSON() : s));
}
