import { ArgumentError } from '../errors.js';
import type { SignatureLike } from '../protocol/schema.js';
import type { AsyncResult } from '../result/async-result.js';
import { Signature } from './signature.js';

/**
 * Canvas builders. Like Celery's, they are values: a chain, group or chord is
 * a signature whose task is the pseudo-name `celery.chain` / `celery.group` /
 * `celery.chord` and whose parts are in `kwargs` — the shape Python encodes.
 * `app.send(canvas)` sends it.
 */

/** A chain step must accept the previous step's result as its first (remaining) arg. */
type Step<In, Out> = Signature<[In], Out> | Signature<[In?], Out> | Signature<[], Out>;

export function chain<A extends readonly unknown[], R1, R2>(first: Signature<A, R1>, s2: Step<R1, R2>): Signature<A, R2>;
export function chain<A extends readonly unknown[], R1, R2, R3>(first: Signature<A, R1>, s2: Step<R1, R2>, s3: Step<R2, R3>): Signature<A, R3>;
export function chain<A extends readonly unknown[], R1, R2, R3, R4>(
  first: Signature<A, R1>,
  s2: Step<R1, R2>,
  s3: Step<R2, R3>,
  s4: Step<R3, R4>,
): Signature<A, R4>;
export function chain<A extends readonly unknown[], R1, R2, R3, R4, R5>(
  first: Signature<A, R1>,
  s2: Step<R1, R2>,
  s3: Step<R2, R3>,
  s4: Step<R3, R4>,
  s5: Step<R4, R5>,
): Signature<A, R5>;
/** Longer chains are not checked step by step (chain them with `pipe` to keep the checks). */
export function chain(s1: Signature, s2: Signature, s3: Signature, s4: Signature, s5: Signature, s6: Signature, ...rest: Signature[]): Signature;
export function chain(...steps: SignatureLike[]): Signature {
  return new Signature({ task: 'celery.chain', kwargs: { tasks: steps.map(plain) }, subtask_type: 'chain' });
}

/**
 * A group: `app.send()` gives a GroupResult for it. `In` is what every member
 * still takes: `[]` for a group sent on its own, the previous step's result for
 * a group inside a chain (each member gets it prepended).
 */
export type GroupSignature<R, In extends readonly unknown[] = []> = Signature<In, R[]> & { readonly subtask_type: 'group' };

/** Run signatures in parallel: `group(add.s(1, 1), add.s(2, 2))` or `group(items.map(...))`. */
export function group<R, In extends readonly unknown[] = []>(...members: (Signature<In, R> | readonly Signature<In, R>[])[]): GroupSignature<R, In> {
  const flat = members.flatMap((m) => (Array.isArray(m) ? (m as readonly Signature<In, R>[]) : [m as Signature<In, R>]));
  return new Signature<In, R[]>({ task: 'celery.group', kwargs: { tasks: flat.map(plain) }, subtask_type: 'group' }) as GroupSignature<R, In>;
}

/**
 * Run `header` in parallel, then `body` once with the header's results in order.
 * Inside a chain, every header member gets the previous step's result first.
 */
export function chord<R, B, In extends readonly unknown[] = []>(header: Signature<In, R[]> | readonly Signature<In, R>[], body: Step<R[], B>): Signature<In, B> {
  const members = Array.isArray(header) ? (header as readonly SignatureLike[]) : (((header as SignatureLike).kwargs.tasks ?? []) as SignatureLike[]);
  // Celery's shape: the header is a `celery.group` signature, and the chord's own kwargs travel in `kwargs.kwargs`.
  const headerGroup = { task: 'celery.group', args: [], kwargs: { tasks: members.map(plain) }, options: {}, subtask_type: 'group', immutable: false };
  return new Signature<In, B>({ task: 'celery.chord', kwargs: { kwargs: {}, header: headerGroup, body: plain(body) }, subtask_type: 'chord' });
}

/** Anything that names a task: a task handle (`add`) or a remote declaration. */
interface TaskRef<Args extends readonly unknown[], R> {
  readonly taskName: string;
  delay(...args: Args): Promise<AsyncResult<R>>;
}

const bare = (task: { readonly taskName: string }): SignatureLike => ({ task: task.taskName, args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false });

/** Celery's `task.map(items)`: one message; the worker calls the task on each item and returns the list. */
export function xmap<A, R>(task: TaskRef<[A], R>, items: readonly A[]): Signature<[], R[]> {
  return new Signature<[], R[]>({ task: 'celery.map', kwargs: { task: bare(task), it: [...items] }, subtask_type: 'xmap', immutable: true });
}

/** Celery's `task.starmap(argsList)`: like `xmap`, spreading each entry as the task's arguments. */
export function xstarmap<A extends readonly unknown[], R>(task: TaskRef<A, R>, argsList: readonly A[]): Signature<[], R[]> {
  return new Signature<[], R[]>({ task: 'celery.starmap', kwargs: { task: bare(task), it: argsList.map((a) => [...a]) }, subtask_type: 'xstarmap', immutable: true });
}

/** Celery's `task.chunks(argsList, n)`: a group of `xstarmap` messages of `n` calls each; `app.send` gives a GroupResult. */
export function chunks<A extends readonly unknown[], R>(task: TaskRef<A, R>, argsList: readonly A[], n: number): GroupSignature<R[]> {
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError('chunks(): the chunk size must be a positive integer', { n });
  return new Signature<[], R[][]>({
    task: 'celery.chunks',
    kwargs: { task: bare(task), it: argsList.map((a) => [...a]), n },
    subtask_type: 'chunks',
    immutable: true,
  }) as GroupSignature<R[]>;
}

/** A signature as the plain JSON dict Celery writes. */
export function plain(sig: SignatureLike): SignatureLike {
  return sig instanceof Signature ? sig.toJSON() : sig;
}
