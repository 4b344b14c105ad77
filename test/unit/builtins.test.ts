import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type CeleriacApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { memoryUrl } from '../helpers/wait.js';

const sig = (task: string, args: unknown[] = [], options: Record<string, unknown> = {}) => ({ task, args, kwargs: {}, options, subtask_type: null, immutable: false });

describe('celery.* builtins, sent by name as a Python client would', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });

  async function setup(): Promise<CeleriacApp> {
    const app = createApp({ broker: memoryUrl('builtins') });
    app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    app.task({ name: 'tasks.xsum' }, (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const worker = new Worker(app, { logLevel: 'silent', concurrency: 4 });
    open.push(app, { close: () => worker.stop({ timeoutMs: 1000 }) });
    await worker.start();
    return app;
  }

  it('celery.accumulate returns its args, or the one at index', async () => {
    const app = await setup();
    expect(await (await app.sendTask('celery.accumulate', [1, 2, 3])).get({ timeout: 5000 })).toEqual([1, 2, 3]);
    expect(await (await app.sendTask('celery.accumulate', [1, 2, 3], { index: 1 })).get({ timeout: 5000 })).toBe(2);
  });

  it('celery.chord applies a chord from its header and body (partial args prepended to the header)', async () => {
    const app = await setup();
    const body = sig('tasks.xsum', [], { task_id: 'chord-body' });
    const header = { task: 'celery.group', args: [], kwargs: { tasks: [sig('tasks.add', [1]), sig('tasks.add', [2])] }, options: {}, subtask_type: 'group', immutable: false };
    await app.sendTask('celery.chord', [], { header, body, partial_args: [10] });
    expect(await app.asyncResult('chord-body').get({ timeout: 5000 })).toBe(23);
  });

  it('celery.chord_unlock waits (retrying) until every header result is ready, then applies the body with them in order', async () => {
    const app = await setup();
    const first = await app.sendTask('tasks.add', [1, 1]);
    const second = await app.sendTask('tasks.add', [2, 2], {}, { countdown: 300 });
    const result = [[[first.id, null], null], [[second.id, null], null]];
    await app.sendTask('celery.chord_unlock', ['g-unlock', sig('tasks.xsum', [], { task_id: 'unlock-body' })], { interval: 0.05, result });
    expect(await app.asyncResult('unlock-body').get({ timeout: 5000 })).toBe(6);
  });

  it('celery.map and celery.starmap call the task here for every item', async () => {
    const app = await setup();
    expect(await (await app.sendTask('celery.starmap', [], { task: sig('tasks.add'), it: [[1, 2], [3, 4]] })).get({ timeout: 5000 })).toEqual([3, 7]);
    expect(await (await app.sendTask('celery.map', [], { task: sig('tasks.xsum'), it: [[1, 2]] })).get({ timeout: 5000 })).toEqual([3]);
  });
});
