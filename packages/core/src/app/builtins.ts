import { applyCanvas } from '../canvas/run.js';
import type { SignatureLike } from '../protocol/schema.js';
import { READY_STATES, type TaskState } from '../protocol/schema.js';
import { currentTask, requestRetry } from '../task/context.js';
import type { CeleriacApp } from './app.js';

/** The part of the app the builtins use (kept narrow so this file reads on its own). */
type BuiltinHost = Pick<CeleriacApp, 'task' | 'registry' | 'backend' | 'config'> & CeleriacApp;

/** Run a registered task's function here, in this worker, as Celery's map/starmap do. */
async function callLocal(app: BuiltinHost, sig: SignatureLike, args: unknown[]): Promise<unknown> {
  const task = app.registry.get(sig.task);
  if (!task) throw new Error(`celery.map/starmap: task ${JSON.stringify(sig.task)} is not registered in this worker`);
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
export function registerBuiltins(app: BuiltinHost): void {
  app.task({ name: 'celery.map', params: ['task', 'it'] }, (task: SignatureLike, it: unknown[]) =>
    Promise.all(it.map((item) => callLocal(app, task, [item]))),
  );
  app.task({ name: 'celery.starmap', params: ['task', 'it'] }, (task: SignatureLike, it: unknown[][]) =>
    Promise.all(it.map((item) => callLocal(app, task, [...item]))),
  );
  app.task({ name: 'celery.accumulate' }, (...args: unknown[]) => {
    // Called as accumulate(*args, index=None): kwargs arrive as a trailing object.
    const last = args[args.length - 1] as { index?: unknown } | undefined;
    const index = last && typeof last === 'object' && !Array.isArray(last) && 'index' in last ? (args.pop(), last.index) : undefined;
    return typeof index === 'number' ? args[index] : args;
  });
  app.task({ name: 'celery.backend_cleanup' }, () => null);
  app.task({ name: 'celery.chord', params: ['header', 'body', 'partial_args'] }, async (header: unknown, body: SignatureLike, partialArgs?: unknown[]) => {
    const sig: SignatureLike = { task: 'celery.chord', args: [], kwargs: { kwargs: {}, header: { task: 'celery.group', args: [], kwargs: { tasks: headerTasks(header) }, options: {}, subtask_type: 'group', immutable: false }, body }, options: {}, subtask_type: 'chord', immutable: false };
    await applyCanvas(app, sig, partialArgs?.length ? { prepend: partialArgs } : {});
    return null;
  });
  app.task({ name: 'celery.group', params: ['tasks', 'result', 'group_id', 'partial_args'] }, async (tasks: SignatureLike[], _result: unknown, groupId?: string, partialArgs?: unknown[]) => {
    const sig: SignatureLike = { task: 'celery.group', args: [], kwargs: { tasks }, options: groupId ? { task_id: groupId } : {}, subtask_type: 'group', immutable: false };
    await applyCanvas(app, sig, partialArgs?.length ? { prepend: partialArgs } : {});
    return null;
  });
  app.task(
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
        const cause = metas[failed]!.result as { exc_type?: string; exc_message?: unknown[] } | null;
        const bodyId = typeof callback.options.task_id === 'string' ? callback.options.task_id : groupId;
        await backend.store(
          {
            task_id: bodyId,
            status: 'FAILURE',
            result: { exc_type: 'ChordError', exc_message: [`Dependency ${ids[failed]} raised ${cause?.exc_type ?? 'error'}(${JSON.stringify(cause?.exc_message?.[0] ?? '')})`], exc_module: 'celery.exceptions' },
            traceback: null,
            children: [],
            date_done: null,
          },
          { expiresMs: app.config.resultExpires },
        );
        return null;
      }
      await applyCanvas(app, callback, { prepend: [metas.map((m) => m!.result)] });
      return null;
    },
  );
}
