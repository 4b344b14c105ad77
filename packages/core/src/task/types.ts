/**
 * Tuple helpers that type `s()` partials the way Celery runs them: the args
 * given to `s()` come *after* the parent's result, which is prepended at run
 * time. So `mul.s(8)` on `(x: number, y: number)` waits for `[x: number]`,
 * and in a chain runs as `mul(parentResult, 8)`.
 */

/** Every suffix of an argument tuple: `[A, B]`, `[B]`, `[]`. */
export type SuffixOf<A extends readonly unknown[]> = number extends A['length']
  ? A // not a tuple (rest parameters): any args
  : A extends readonly []
    ? []
    : A extends readonly [unknown, ...infer T]
      ? A | SuffixOf<T>
      : A extends readonly [(infer H)?, ...infer T]
        ? [H?, ...T] | SuffixOf<T>
        : A;

/** What remains of `A` (its leading part) once the suffix `S` is bound. */
export type DropSuffix<A extends readonly unknown[], S extends readonly unknown[]> = number extends A['length']
  ? A
  : S extends readonly []
    ? A
    : S extends readonly [...infer SH, unknown]
      ? A extends readonly [...infer AH, unknown]
        ? DropSuffix<AH, SH>
        : A extends readonly [...infer AH, unknown?]
          ? DropSuffix<AH, SH>
          : A
      : A;

/** Any function usable as a task body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskFn = (...args: any[]) => unknown;

/** Every prefix of an argument tuple: `[]`, `[A]`, `[A, B]` (what `clone(args)` can bind: it prepends). */
export type PrefixOf<A extends readonly unknown[]> = number extends A['length']
  ? A
  : A extends readonly []
    ? []
    : A extends readonly [infer H, ...infer T]
      ? [] | [H, ...PrefixOf<T>]
      : A extends readonly [(infer H)?, ...infer T]
        ? [] | [H, ...PrefixOf<T>]
        : A;

/** What remains of `A` once the prefix `P` is bound. */
export type DropPrefix<A extends readonly unknown[], P extends readonly unknown[]> = number extends A['length']
  ? A
  : P extends readonly []
    ? A
    : P extends readonly [unknown, ...infer PT]
      ? A extends readonly [unknown?, ...infer AT]
        ? DropPrefix<AT, PT>
        : A
      : A;
