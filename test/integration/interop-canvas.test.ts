import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { chain, chord, createApp, group, TaskError, type CeleriacApp } from '@celeriac/core';
import { ROOT, startWorker } from '../helpers/processes.js';
import { PY_DIR, PYTHON, startPythonWorker } from '../helpers/python.js';

const LECTURE = join(ROOT, 'test', 'fixtures', 'apps', 'lecture.ts');
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
let n = 0;
function world() {
  const url = inject('redisUrl').replace(/\/0$/, `/${(++n % 7) + 8}`);
  return { url, env: { CELERIAC_BROKER_URL: url, CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: url } };
}

describe('the lecture canvases across Python Celery 5.2.6 and celeriac, over Redis', () => {
  it('a Python client runs them on celeriac workers and every value comes back right', async () => {
    const { env } = world();
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
    await worker.waitForOutput(/task succeeded/);
  });

  it('a celeriac client runs them on Python workers', async () => {
    const { url, env } = world();
    await startPythonWorker(env);
    const app = createApp({ broker: url });
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
    const err = (await (await app.sendTask('tasks.broken_task', [])).get({ timeout: 20_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('Exception');
  });
});
