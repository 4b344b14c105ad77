import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as userApi from '@celeriac/core';
import * as spi from '@celeriac/core/spi';
import { applyOptionsOf, chain, group, TaskError } from '@celeriac/core/spi';
import { memoryApp, startInProcessWorker } from '../helpers/in-process.js';

describe('the public API a newcomer uses', () => {
  it('@celeriac/core is the small user API; transports, protocol and internals are at @celeriac/core/spi', () => {
    for (const name of ['createApp', 'chain', 'group', 'chord', 'Signature', 'AsyncResult', 'GroupResult', 'TaskError', 'ErrorCodes', 'isCeleriacError', 'currentTask', 'task']) {
      expect(userApi, name).toHaveProperty(name);
    }
    for (const name of ['fromWire', 'toWire', 'RedisTransport', 'AmqpTransport', 'applyCanvas', 'continueAfter', 'resultMeta', 'TRANSPORT_FACTORIES', 'connectRedis']) {
      expect(userApi, name).not.toHaveProperty(name);
      expect(spi, name).toHaveProperty(name);
    }
    // One module behind both entries: a class from either is the same class.
    expect(spi.CeleriacApp).toBe(userApi.CeleriacApp);
  });

  it('one step from a call to its value: delay(...).get(), applyAsync(...).get(), app.send(...).get()', async () => {
    const app = memoryApp('one-step');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    await startInProcessWorker(app);
    await expect(add.delay(1, 2).get({ timeout: 3000 })).resolves.toBe(3);
    await expect(add.applyAsync([2, 3], { countdown: 1 }).get({ timeout: 3000 })).resolves.toBe(5);
    await expect(app.send(chain(add.s(1, 1), add.s(10))).get({ timeout: 3000 })).resolves.toBe(12);
    await expect(app.send(group([add.s(1, 1), add.s(2, 2)])).get({ timeout: 3000 })).resolves.toEqual([2, 4]);
    // Awaited as before, it is still the handle.
    const handle = await add.delay(4, 4);
    await expect(handle.get({ timeout: 3000 })).resolves.toBe(8);
  });

  it('applyAsync takes kwargs inside its options; the old (args, kwargs) and (args, kwargs, options) forms keep their meaning', async () => {
    const app = memoryApp('kwargs');
    const greet = app.task({ name: 'tasks.greet', params: ['name', 'greeting'] }, (name: string, greeting = 'hello') => `${greeting} ${name}`);
    await startInProcessWorker(app);
    // Keyword arguments (as a Python caller sends them) fill the named parameters.
    const byName = app.declareTask<unknown[], string>(greet.taskName);
    await expect(byName.applyAsync([], { kwargs: { name: 'ada', greeting: 'hi' }, queue: 'celery' }).get({ timeout: 3000 })).resolves.toBe('hi ada');
    await expect(byName.applyAsync([], { name: 'bob' } as never).get({ timeout: 3000 })).resolves.toBe('hello bob');
    await expect(greet.applyAsync(['cy'], { greeting: 'yo' }, {}).get({ timeout: 3000 })).resolves.toBe('yo cy');
  });

  it('Signature.set() takes camelCase milliseconds options and writes them as Celery does; applyOptionsOf reads them back', () => {
    const app = memoryApp('set');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    const eta = new Date('2026-12-04T12:00:00Z');
    const sig = add.s(1, 2).set({ countdown: 5000, taskId: 'id-1', queue: 'math', timeLimit: 30_000, softTimeLimit: 10_000, eta, ignoreResult: true, linkError: add.s(0) });
    expect(sig.options).toMatchObject({ countdown: 5, task_id: 'id-1', queue: 'math', time_limit: 30, soft_time_limit: 10, eta: '2026-12-04T12:00:00.000Z', ignore_result: true });
    expect(sig.options.link_error).toEqual([expect.objectContaining({ task: 'tasks.add', args: [0] })]);
    // Celery's own snake_case keys pass through unchanged.
    expect(add.s(1, 2).set({ link_error: [], task_id: 'x' }).options).toMatchObject({ link_error: [], task_id: 'x' });
    expect(applyOptionsOf(sig.options)).toMatchObject({ countdown: 5000, taskId: 'id-1', queue: 'math', timeLimit: 30_000, softTimeLimit: 10_000, eta, ignoreResult: true });
  });

  it('GroupResult.get({ propagate: false }) puts the TaskError of a failed member in its place', async () => {
    const app = memoryApp('propagate');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    const boom = app.task({ name: 'tasks.boom' }, () => {
      throw new Error('boom');
    });
    await startInProcessWorker(app);
    const values = await app.send(group([add.s(1, 2), boom.s()])).get({ timeout: 3000, propagate: false });
    expect(values[0]).toBe(3);
    expect(values[1]).toBeInstanceOf(TaskError);
    await expect(app.send(group([boom.s()])).get({ timeout: 3000 })).rejects.toBeInstanceOf(TaskError);
  });

  it('a derived task name warns once per process that renaming the file renames the task', () => {
    const core = join(import.meta.dirname, '../../packages/core/dist/index.js');
    const script = `import { createApp } from ${JSON.stringify(core)};
const app = createApp({ broker: 'memory://w' });
app.task(function first() { return 1; });
app.task(function second() { return 2; });
app.task({ name: 'pinned.task' }, function third() { return 3; });`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const warnings = run.stderr.split('\n').filter((l) => l.includes('CELERIAC_DERIVED_TASK_NAME'));
    expect(warnings).toHaveLength(1);
    expect(run.stderr).toContain('renaming either renames the task on the wire');
  });
});
