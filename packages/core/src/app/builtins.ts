import type { CanvasHost } from '../canvas/host.js';
import { applyCanvas } from '../canvas/run.js';
import { UnknownTaskError } from '../errors.js';
import type { SignatureLike } from '../protocol/schema.js';
import { READY_STATES, type TaskState } from '../protocol/schema.js';
import { CELERY_EXCEPTIONS, resultMeta } from '../result/records.js';
import { currentTask, requestRetry } from '../task/context.js';
import type { TaskOptions } from '../task/options.js';
import type { AnyTaskFn } from '../task/types.js';
import type { RegisteredTask } from './registry.js';

/** What the builtins use of an app (kept narrow so this file reads on its own). */
export type BuiltinHost = CanvasHost & { readonly registry: { get(name: string): RegisteredTask | undefined } };

/** A builtin task, for the app to register. */
export interface BuiltinTask {
  readonly options: TaskOptions & { readonly name: string };
  readonly fn: AnyTaskFn;
}

/** Run a registered task's function here, in this worker, as Celery's map/starmap do. */
async function callLocal(app: BuiltinHost, sig: SignatureLike, args: unknown[]): Promise<unknown> {
  const task = app.registry.get(sig.task);
  if (!task) throw new UnknownTaskError(sig.task);
  return task.fn.apply(currentTask(), args);
}

/** Task ids inside Celery's serialised results (`[[id, parent], children]` tuples, or plain ids). */
function idsOf(result: unknown): string[] {
  const first = (v: unknown): string | undefined => (typeof v === 'string' ? v : Array.isArray(v) ? first(v[0]) : undefined);
  return Array.isArray(result) ? result.map(first).filter((id): id is string => id !== undefined) : [];
}

const headerTasks = (header: unknown): SignatureLike[] => {
  if (Array.isArray(header)) return header as SignatureLike[];
  const h = header as SignatureLike | undefined;
  return (h?.kwargs?.tasks as SignatureLike[] | undefined) ?? [];
};

/**
 * The `celery.*` tasks a Python Celery client's canvases rely on, registered in
 * every app so celeriac workers can run them: `celery.map` / `celery.starmap`
 * (also used by `chunks`), `celery.chord`, `celery.group`, `celery.chord_unlock`
 * (the polling join of backends without a native one), `celery.accumulate`, and
 * `celery.backend_cleanup` (beat's default entry in Celery; results expire on
 * their own here).
 */
export function builtinTasks(app: BuiltinHost): BuiltinTask[] {
  const tasks: BuiltinTask[] = [];
  const define = <F extends AnyTaskFn>(options: BuiltinTask['options'], fn: F): void => void tasks.push({ options, fn });
  define({ name: 'celery.map', params: ['task', 'it'] }, (task: SignatureLike, it: unknown[]) =>
    Promise.all(it.map((item) => callLocal(app, task, [item]))),
  );
  define({ name: 'celery.starmap', params: ['task', 'it'] }, (task: SignatureLike, it: unknown[][]) =>
    Promise.all(it.map((item) => callLocal(app, task, [...item]))),
  );
  define({ name: 'celery.accumulate' }, (...args: unknown[]) => {
    // Called as accumulate(*args, index=None): kwargs arrive as a trailing object.
    const last = args[args.length - 1] as { index?: unknown } | undefined;
    const index = last && typeof last === 'object' && !Array.isArray(last) && 'index' in last ? (args.pop(), last.index) : undefined;
    return typeof index === 'number' ? args[index] : args;
  });
  define({ name: 'celery.backend_cleanup' }, () => null);
  define({ name: 'celery.chord', params: ['header', 'body', 'partial_args'] }, async (header: unknown, body: SignatureLike, partialArgs?: unknown[]) => {
    const sig: SignatureLike = { task: 'celery.chord', args: [], kwargs: { kwargs: {}, header: { task: 'celery.group', args: [], kwargs: { tasks: headerTasks(header) }, options: {}, subtask_type: 'group', immutable: false }, body }, options: {}, subtask_type: 'chord', immutable: false };
    await applyCanvas(app, sig, partialArgs?.length ? { prepend: partialArgs } : {});
    return null;
  });
  define({ name: 'celery.group', params: ['tasks', 'result', 'group_id', 'partial_args'] }, async (tasks: SignatureLike[], _result: unknown, groupId?: string, partialArgs?: unknown[]) => {
    const sig: SignatureLike = { task: 'celery.group', args: [], kwargs: { tasks }, options: groupId ? { task_id: groupId } : {}, subtask_type: 'group', immutable: false };
    await applyCanvas(app, sig, partialArgs?.length ? { prepend: partialArgs } : {});
    return null;
  });
  define(
    { name: 'celery.chord_unlock', params: ['group_id', 'callback', 'interval', 'max_retries', 'result'], maxRetries: Number.MAX_SAFE_INTEGER },
    async (groupId: string, callback: SignatureLike, interval?: number | null, _maxRetries?: number | null, result?: unknown) => {
      const ids = idsOf(result);
      const backend = await app.backend();
      const metas = await backend.getMany(ids);
      if (!metas.every((m) => m && READY_STATES.has(m.status as TaskState))) {
        return requestRetry({ countdown: (interval ?? 1) * 1000 });
      }
      const failed = metas.findIndex((m) => m!.status !== 'SUCCESS');
      if (failed >= 0) {
        const bodyId = typeof callback.options.task_id === 'string' ? callback.options.task_id : groupId;
        const exc = CELERY_EXCEPTIONS.chordError(ids[failed]!, metas[failed]!.status, metas[failed]!.result);
        await backend.store(resultMeta({ id: bodyId, group: null, parent_id: null }, 'FAILURE', exc), { expiresMs: app.config.resultExpires });
        return null;
      }
      await applyCanvas(app, callback, { prepend: [metas.map((m) => m!.result)] });
      return null;
    },
  );
  return tasks;
}
