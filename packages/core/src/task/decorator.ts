import { ArgumentError } from '../errors.js';
import type { TaskOptions } from './options.js';
import type { AnyTaskFn } from './types.js';

/** Methods marked by `@task()`, waiting for `app.register(instance)`. */
const marked = new WeakMap<AnyTaskFn, { options: TaskOptions; methodName: string }>();

/**
 * TC39 standard method decorator: marks a class method as a task. Register
 * an instance with `app.register(new Tasks())`; the name defaults to
 * `<ClassName>.<method>`.
 *
 * ```ts
 * class Tasks {
 *   @task({ name: 'tasks.add' }) async add(x: number, y: number) { return x + y; }
 * }
 * const { add } = app.register(new Tasks());
 * ```
 */
export function task(options: TaskOptions = {}) {
  return function <F extends AnyTaskFn>(method: F, context: ClassMethodDecoratorContext): F {
    if (context.kind !== 'method' || context.static || context.private) {
      throw new ArgumentError('@task() applies to public instance methods', { kind: context.kind, name: String(context.name), static: context.static, private: context.private });
    }
    marked.set(method, { options, methodName: String(context.name) });
    return method;
  };
}

/** The `@task()` marks of an object's methods (own class and its parents). */
export function markedMethods(instance: object): { fn: AnyTaskFn; options: TaskOptions; methodName: string }[] {
  const found: { fn: AnyTaskFn; options: TaskOptions; methodName: string }[] = [];
  const seen = new Set<string>();
  for (let proto = Object.getPrototypeOf(instance) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const value = (proto as Record<string, unknown>)[key];
      if (typeof value !== 'function' || seen.has(key)) continue;
      const mark = marked.get(value as AnyTaskFn);
      if (mark) {
        seen.add(key);
        found.push({ fn: value as AnyTaskFn, ...mark });
      }
    }
  }
  return found;
}
