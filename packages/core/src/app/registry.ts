import { ErrorCodes, UnknownTaskError, ValidationError, CeleriacError, type ErrorCode } from '../errors.js';
import type { ResolvedTaskOptions, StandardSchemaV1 } from '../task/options.js';
import type { AnyTaskFn } from '../task/types.js';

/** A task as the registry holds it: its name, function and resolved options. */
export interface RegisteredTask {
  readonly name: string;
  readonly fn: AnyTaskFn;
  readonly options: ResolvedTaskOptions;
}

/**
 * Task name → definition. A `Map`, so names like `__proto__` or `constructor`
 * are simply unknown rather than reaching into an object's prototype.
 */
export class TaskRegistry {
  private readonly tasks = new Map<string, RegisteredTask>();

  add(task: RegisteredTask): void {
    const existing = this.tasks.get(task.name);
    if (existing && existing.fn !== task.fn) {
      throw new CeleriacError(ErrorCodes.TASK_DUPLICATE, `A different task is already registered as ${JSON.stringify(task.name)}`, {
        taskName: task.name,
      });
    }
    this.tasks.set(task.name, task);
  }

  get(name: string): RegisteredTask | undefined {
    return this.tasks.get(name);
  }

  /** The task, or an {@link UnknownTaskError} naming it. */
  require(name: string): RegisteredTask {
    const task = this.tasks.get(name);
    if (!task) throw new UnknownTaskError(name);
    return task;
  }

  names(): string[] {
    return [...this.tasks.keys()].sort();
  }
}

/** Standard Schema issues as one line: `arg 0: expected number; arg 1.x: required` (`args: ...` when an issue has no path). */
function issues(list: ReadonlyArray<StandardSchemaV1.Issue>, root: string, prefix: string): string {
  return list
    .map((issue) => {
      const path = (issue.path ?? []).map((seg) => String(typeof seg === 'object' && seg !== null ? seg.key : seg));
      return `${path.length ? `${prefix}${path.join('.')}` : root}: ${issue.message}`;
    })
    .join('; ');
}

/** Validate `value` against a task's Standard Schema (synchronous schemas only: the worker checks before and after the run). */
function validate(schema: StandardSchemaV1, value: unknown, task: RegisteredTask, what: 'arguments' | 'result', code: ErrorCode): unknown {
  const [root, prefix] = what === 'arguments' ? ['args', 'arg '] : ['result', 'result.'];
  let outcome: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
  try {
    outcome = schema['~standard'].validate(value);
  } catch (err) {
    throw new ValidationError(`Invalid ${what} for task ${task.name}: ${root}: the schema threw: ${err instanceof Error ? err.message : String(err)}`, { taskName: task.name }, code);
  }
  if (outcome instanceof Promise) {
    outcome.catch(() => undefined);
    throw new ValidationError(
      `Invalid ${what} for task ${task.name}: its ${what === 'arguments' ? 'args' : 'result'} schema is asynchronous (${schema['~standard'].vendor}): use a schema without async refinements`,
      { taskName: task.name },
      code,
    );
  }
  if (outcome.issues) throw new ValidationError(`Invalid ${what} for task ${task.name}: ${issues(outcome.issues, root, prefix)}`, { taskName: task.name }, code);
  return outcome.value;
}

/**
 * Turn a message's `args` and `kwargs` into the positional arguments of the
 * task function, validating them against the task's `args` schema (a Standard Schema) when it has one.
 * Keyword arguments (from Python clients) are placed by the task's `params`
 * names; without `params`, they are passed as one trailing object.
 */
export function resolveCallArgs(task: RegisteredTask, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>): unknown[] {
  let call = [...args];
  const keys = Object.keys(kwargs);
  if (keys.length > 0) {
    const params = task.options.params;
    if (params) {
      for (const key of keys) {
        const at = params.indexOf(key);
        if (at === -1) {
          throw new ValidationError(`Task ${task.name} got an unexpected keyword argument ${JSON.stringify(key)} (params: ${params.join(', ')})`, {
            taskName: task.name,
          });
        }
        if (at < call.length && call[at] !== undefined) {
          throw new ValidationError(`Task ${task.name} got multiple values for argument ${JSON.stringify(key)}`, { taskName: task.name });
        }
        while (call.length < at) call.push(undefined);
        call[at] = kwargs[key];
      }
    } else {
      call.push({ ...kwargs });
    }
  }
  const schema = task.options.args;
  if (schema) {
    const value = validate(schema, call, task, 'arguments', ErrorCodes.TASK_ARGS_INVALID);
    if (!Array.isArray(value)) {
      throw new ValidationError(`Invalid arguments for task ${task.name}: args: its schema must produce an array (a tuple of the positional args)`, { taskName: task.name });
    }
    call = value as unknown[];
  }
  return call;
}

/** Check a task's return value against its `result` schema, when it has one. */
export function checkResult(task: RegisteredTask, value: unknown): unknown {
  const schema = task.options.result;
  if (!schema) return value;
  return validate(schema, value, task, 'result', ErrorCodes.TASK_RESULT_INVALID);
}
