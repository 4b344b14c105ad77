import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { chain, chord, chunks, createApp, group, TaskError, xmap, xstarmap, type CeleriacApp } from '@celeriac/core';
import { ROOT, startWorker } from '../helpers/processes.js';
import { PY_DIR, PYTHON, startPythonWorker } from '../helpers/python.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { waitFor } from '../helpers/wait.js';

const LECTURE = join(ROOT, 'test', 'fixtures', 'apps', 'lecture.ts');
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
let n = 0;
/** Redis as broker and backend, or RabbitMQ (a vhost of its own) as broker with Redis results. */
async function world(broker: 'redis' | 'amqp') {
  const backend = inject('redisUrl').replace(/\/0$/, `/${(++n % 7) + 8}`);
  const url = broker === 'redis' ? backend : await freshVhost(inject('amqpUrl'), inject('amqpNode'), `canvas-interop-${process.pid}-${n}`);
  return {
    url,
    backend,
    env: { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend, CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: backend },
  };
}

describe.each(['redis', 'amqp'] as const)('the lecture canvases across Python Celery 5.2.6 and celeriac, broker %s', (broker) => {
  it('a Python client runs them on celeriac workers and every value comes back right', async () => {
    const { env } = await world(broker);
    const worker = await startWorker(['-A', LECTURE, '-c', '4'], env);
    const r = spawnSync(PYTHON, ['canvas_client.py'], { cwd: PY_DIR, env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, { value?: unknown; state?: string; ready?: boolean; type?: string; message?: string; id?: string } | unknown[] | number>;
    expect(out.add).toEqual({ value: 2, state: 'SUCCESS', ready: true });
    expect(out.group).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    expect(out.chain).toBe(64);
    expect(out.chord).toBe(90);
    expect(out.broken).toMatchObject({ type: 'Exception', message: 'failed' });
    expect(out.print).toMatchObject({ value: null });
    expect(out.nested_chain).toBe(12);
    expect(out.chain_group_chord).toBe(12);
    expect(out.chord_body_chain).toBe(96);
    expect(out.chord_of_chains).toBe(18);
    expect(out.group_of_chains).toEqual([4, 16]);
    expect(out.map).toEqual([3, 3]);
    expect(out.starmap).toEqual([3, 7]);
    expect(out.chunks).toEqual([[0, 2], [4, 6], [8]]);
    // link_error and link from the Python client ran on the celeriac worker.
    await worker.waitForOutput(/"task":"tasks.on_task_error".*task succeeded/);
    await worker.waitForOutput(/"task":"tasks.on_task_success".*task succeeded/);
  });

  it('a celeriac client runs them on Python workers', async () => {
    const { url, backend, env } = await world(broker);
    const py = await startPythonWorker(env);
    const app = createApp({ broker: url, backend });
    clients.push(app);
    const add = app.declareTask<[number, number], number>('tasks.add');
    const mul = app.declareTask<[number, number], number>('tasks.mul');
    const xsum = app.declareTask<[number[]], number>('tasks.xsum');
    const r = await add.delay(1, 1);
    expect(await r.get({ timeout: 20_000 })).toBe(2);
    expect(await r.state()).toBe('SUCCESS');
    expect(await (await app.send(group(Array.from({ length: 10 }, (_, i) => add.s(i, i))))).get({ timeout: 20_000 })).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    expect(await (await app.send(chain(add.s(4, 4), mul.s(8)))).get({ timeout: 20_000 })).toBe(64);
    expect(await (await app.send(chord(Array.from({ length: 10 }, (_, i) => add.s(i, i)), xsum.s()))).get({ timeout: 30_000 })).toBe(90);
    const onTaskError = app.declareTask<[string, string], string>('tasks.on_task_error');
    const broken = await app.sendTask('tasks.broken_task', [], {}, { linkError: onTaskError.s('broken_task') });
    const err = (await broken.get({ timeout: 20_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('Exception');
    // Celery 5.2.6 runs a multi-argument errback in the worker itself, with the failed request first.
    await waitFor(() => py.output().includes('errback got') && py.output().includes(broken.id), 'the errback ran on the Python worker');
    expect(py.output()).toMatch(/errback got .*Exception\('failed'\).*'broken_task'\]/);
    const printTask = app.declareTask<[string], null>('tasks.print_task');
    const onSuccess = app.declareTask<[unknown, string], string>('tasks.on_task_success');
    const printed = await printTask.applyAsync(['something'], {}, { link: onSuccess.s('print_task') });
    expect(await printed.get({ timeout: 20_000 })).toBeNull();
    // Nested canvases, encoded by celeriac, run by Python workers.
    const get = async (sig: Parameters<typeof app.send>[0]) => (await app.send(sig)).get({ timeout: 30_000 });
    expect(await get(chain(add.s(1, 1), group(mul.s(1), mul.s(2), mul.s(3)), xsum.s()))).toBe(12);
    expect(await get(chain(group(add.s(1, 1), add.s(2, 2)), chord([xsum.s(), xsum.s()], xsum.s())))).toBe(12);
    expect(await get(chord([0, 1, 2].map((i) => add.s(i, i)), xsum.s().pipe(add.s(90))))).toBe(96);
    expect(await get(chord([chain(add.s(1, 1), mul.s(3)), chain(add.s(2, 2), mul.s(3))], xsum.s()))).toBe(18);
    expect(await get(group(chain(add.s(1, 1), mul.s(2)), chain(add.s(2, 2), mul.s(4))))).toEqual([4, 16]);
    expect(await get(xmap(xsum, [[1, 2], [3]]))).toEqual([3, 3]);
    expect(await get(xstarmap(add, [[1, 2], [3, 4]]))).toEqual([3, 7]);
    expect(await get(chunks(add, [0, 1, 2, 3, 4].map((i) => [i, i] as [number, number]), 2))).toEqual([[0, 2], [4, 6], [8]]);
  }, 120_000);
});
