import type { z } from 'zod';
import { formatIssues } from '../util/issues.js';
import { ErrorCodes, UnknownTaskError, ValidationError, CeleriacError } from '../errors.js';
import type { ResolvedTaskOptions } from '../task/options.js';
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

function issues(error: z.ZodError): string {
  return formatIssues(error, { root: 'args', prefix: 'arg ' });
}

/**
 * Turn a message's `args` and `kwargs` into the positional arguments of the
 * task function, validating them against the task's zod schema when it has one.
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
    const parsed = schema.safeParse(call);
    if (!parsed.success) {
      throw new ValidationError(`Invalid arguments for task ${task.name}: ${issues(parsed.error)}`, { taskName: task.name });
    }
    call = parsed.data;
  }
  return call;
}

/** Check a task's return value against its `result` schema, when it has one. */
export function checkResult(task: RegisteredTask, value: unknown): unknown {
  const schema = task.options.result;
  if (!schema) return value;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ValidationError(`Invalid result from task ${task.name}: ${issues(parsed.error)}`, { taskName: task.name }, ErrorCodes.TASK_RESULT_INVALID);
  }
  return parsed.data;
}
