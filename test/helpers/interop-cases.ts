import { expect, it } from 'vitest';
import { createApp, TaskError, type CeleriacApp } from '@celeriac/core';
import { startWorker } from './processes.js';
import { pythonClient, startPythonWorker } from './python.js';

/** Where one interop test runs: URLs for both sides and the env that carries them to both. */
export interface InteropWorld {
  readonly url: string;
  readonly backend: string;
  readonly env: Record<string, string>;
}

/**
 * The two delay/get interop cases every broker runs, both directions: a Python
 * client on a celeriac worker, and a celeriac client on a Python worker —
 * values, state, a failure with its exception, a countdown, unicode kwargs.
 */
export function delayGetInteropCases(world: () => Promise<InteropWorld>, lecture: string, clients: CeleriacApp[]): void {
  it('a Python client delay/get on a celeriac worker: values, state, a failure with its exception, a countdown, kwargs', async () => {
    const { env } = await world();
    await startWorker(['-A', lecture, '-c', '4'], env);
    const [sum, failed, later, kw, variadic] = pythonClient(env, [
      { task: 'tasks.add', args: [1, 1] },
      { task: 'tasks.broken_task' },
      { task: 'tasks.add', args: [2, 3], countdown: 1 },
      { task: 'tasks.add', args: ['héllo '], kwargs: { y: 'wörld 世界 🚀' } },
      // A `*args, **kwargs` call: the trailing positional dict stays an arg, the kwargs stay kwargs.
      { task: 'tasks.variadic', args: [1, { a: 1 }], kwargs: { b: 2 } },
    ]);
    expect(sum).toMatchObject({ value: 2, state: 'SUCCESS', ready: true });
    expect(failed).toMatchObject({ error: { type: 'Exception', message: 'failed' }, state: 'FAILURE', ready: true });
    expect(later).toMatchObject({ value: 5, state: 'SUCCESS' });
    expect(kw).toMatchObject({ value: 'héllo wörld 世界 🚀', state: 'SUCCESS' });
    expect(variadic).toMatchObject({ value: { args: [1, { a: 1 }], kwargs: { b: 2 } }, state: 'SUCCESS' });
  });

  it('a celeriac client delay/get on a Python worker: values, a failure with its exception, a countdown', async () => {
    const { url, backend, env } = await world();
    await startPythonWorker(env);
    const app = createApp({ broker: url, backend });
    clients.push(app);
    expect(await (await app.sendTask<number>('tasks.add', [1, 1])).get({ timeout: 20_000 })).toBe(2);
    const err = (await (await app.sendTask('tasks.broken_task', [])).get({ timeout: 20_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.excType).toBe('Exception');
    expect(err.excMessage).toBe('failed');
    expect(err.remoteTraceback).toContain("raise Exception('failed')");
    const sent = Date.now();
    const later = await app.sendTask<number>('tasks.mul', [6, 7], {}, { countdown: 1000 });
    expect(await later.get({ timeout: 20_000 })).toBe(42);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(950);
    expect(await later.state()).toBe('SUCCESS');
  });
}
