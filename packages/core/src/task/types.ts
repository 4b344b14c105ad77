/**
 * Tuple helpers that make `s()` partials typed: `add.s(4)` on
 * `(x: number, y: number)` is a signature still waiting for `[y: number]`.
 */

/** Every prefix of an argument tuple: `[]`, `[A]`, `[A, B]`, ... */
export type PrefixOf<A extends readonly unknown[]> = number extends A['length']
  ? A // not a tuple (rest parameters): any prefix of the array type
  : A extends readonly []
  ? []
  : A extends readonly [infer H, ...infer T]
    ? [] | [H, ...PrefixOf<T>]
    : A extends readonly [(infer H)?, ...infer T]
      ? [] | [H, ...PrefixOf<T>]
      : A;

/** What remains of `A` after the prefix `P` is bound. */
export type DropPrefix<A extends readonly unknown[], P extends readonly unknown[]> = number extends A['length']
  ? A
  : P extends readonly []
  ? A
  : P extends readonly [unknown, ...infer PT]
    ? A extends readonly [unknown?, ...infer AT]
      ? DropPrefix<AT, PT>
      : A
    : A;

/** Any function usable as a task body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskFn = (...args: any[]) => unknown;
