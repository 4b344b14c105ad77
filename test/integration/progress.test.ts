import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp, type CeleriacApp, type StateUpdate } from '@celeriac/core';
import { celeriac, ROOT, startWorker } from '../helpers/processes.js';
import { PY_DIR, PYTHON, startPythonWorker } from '../helpers/python.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';

const LECTURE = join(ROOT, 'test', 'fixtures', 'apps', 'lecture.ts');
const dir = tempDir('celeriac-progress-');
const clients: CeleriacApp[] = [];
let n = 0;
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

type Kind = 'redis' | 'sqlite' | 'amqp';

async function world(kind: Kind) {
  const id = ++n;
  const redis = inject('redisUrl').replace(/\/0$/, `/${(id % 15) + 1}`);
  const broker = kind === 'sqlite' ? `sqlite://${join(dir, `p${id}.db`)}` : kind === 'redis' ? redis : await freshVhost(inject('amqpUrl'), inject('amqpNode'), `progress-${process.pid}-${id}`);
  const backend = kind === 'amqp' ? 'rpc://' : broker;
  const env = { CELERIAC_BROKER_URL: broker, CELERIAC_RESULT_BACKEND: backend, CELERY_BROKER_URL: broker, CELERY_RESULT_BACKEND: backend };
  const client = createApp({ name: 'progress-client', broker, backend });
  clients.push(client);
  return { env, client, gate: join(dir, `gate-${id}`) };
}

/**
 * Reads every state of tasks.progress(gate, 2) through result.states(): each
 * PROGRESS step is held by the task until this opens its gate, so no state
 * can come and go unseen — the sequence is exact, not sampled.
 */
async function followProgress(client: CeleriacApp, gate: string): Promise<{ seen: StateUpdate[]; progressWhileHeld: unknown[] }> {
  const result = await client.sendTask<string>('tasks.progress', [gate, 2]);
  const seen: StateUpdate[] = [];
  const progressWhileHeld: unknown[] = [];
  for await (const update of result.states({ intervalMs: 20, timeout: 30_000 })) {
    seen.push(update);
    if (update.state === 'PROGRESS') {
      progressWhileHeld.push(await result.progress());
      writeFileSync(`${gate}.${(update.info as { step: number }).step}`, '');
    }
  }
  expect(await result.progress()).toBeNull();
  expect(await result.info()).toBe('done 2');
  return { seen, progressWhileHeld };
}

function progressOnly(seen: StateUpdate[]) {
  return seen.filter((s) => s.state !== 'PENDING' && s.state !== 'STARTED').map(({ state, info, ready }) => ({ state, info, ready }));
}

const EXPECTED = [
  { state: 'PROGRESS', info: { step: 1, of: 2 }, ready: false },
  { state: 'PROGRESS', info: { step: 2, of: 2 }, ready: false },
  { state: 'SUCCESS', info: 'done 2', ready: true },
];

describe.each(['sqlite', 'redis', 'amqp'] as const)('progress to the caller on %s', (kind) => {
  it('updateState(PROGRESS, meta) reaches result.progress() and each state comes out of result.states() until the ready one', async () => {
    const { env, client, gate } = await world(kind);
    await startWorker(['-A', LECTURE, '-c', '2'], env);
    const { seen, progressWhileHeld } = await followProgress(client, gate);
    expect(progressOnly(seen)).toEqual(EXPECTED);
    expect(progressWhileHeld).toEqual([{ step: 1, of: 2 }, { step: 2, of: 2 }]);
  });
});

describe('progress across languages (Redis)', () => {
  it("a celeriac client follows a Python task's PROGRESS states", async () => {
    const { env, client, gate } = await world('redis');
    await startPythonWorker(env);
    const { seen } = await followProgress(client, gate);
    expect(progressOnly(seen)).toEqual(EXPECTED);
  });

  it("a Python client reads a celeriac task's PROGRESS state and info", async () => {
    const { env, gate } = await world('redis');
    const worker = await startWorker(['-A', LECTURE, '-c', '2'], env);
    // Not spawnSync: this process must keep reading the worker's output while the client runs.
    const py = spawn(PYTHON, ['progress_client.py'], { cwd: PY_DIR, env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    py.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    py.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    py.stdin.end(JSON.stringify({ gate, steps: 2 }));
    const status = await new Promise<number | null>((resolve) => py.on('exit', resolve));
    const r = { status, stdout, stderr: `${stderr}\n--- worker ---\n${worker.output()}` };
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ seen: [{ step: 1, of: 2 }, { step: 2, of: 2 }], value: 'done 2', state: 'SUCCESS' });
  });
});

describe('celeriac result --follow', () => {
  it('prints each state as it comes, PROGRESS with its info, until the ready one (--json: one line each)', async () => {
    const { env, client, gate } = await world('redis');
    await startWorker(['-A', LECTURE, '-c', '2'], env);
    const r = await client.sendTask<string>('tasks.progress', [gate, 2]);
    const follow = celeriac(['result', r.id, '--follow', '--json'], env);
    for (const step of [1, 2]) {
      await follow.waitForOutput(new RegExp(`"state":"PROGRESS","info":\\{"step":${step},"of":2\\}`));
      writeFileSync(`${gate}.${step}`, '');
    }
    expect(await follow.exited).toBe(0);
    const lines = follow.output().trim().split('\n').map((l) => JSON.parse(l) as { state: string; info: unknown });
    expect(lines.filter((l) => l.state === 'PROGRESS').map((l) => l.info)).toEqual([{ step: 1, of: 2 }, { step: 2, of: 2 }]);
    expect(lines.at(-1)).toMatchObject({ state: 'SUCCESS', info: 'done 2' });
  });
});
