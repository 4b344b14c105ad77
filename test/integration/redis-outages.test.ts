import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type AsyncResult, type CeleriacApp } from '@celeriac/core';
import { celeriac, FIXTURE_APP, startWorker } from '../helpers/processes.js';
import { readEffects } from '../helpers/effects.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../servers/redis.js';

/**
 * The faults of issue #15 as an operator met them, each reproduced as found (outages as long as real
 * ones: a fault that lasts 10 s is not the same fault as one that lasts 1 s).
 */
const dir = tempDir('celeriac-redis-outages-');
const servers: RedisServer[] = [];
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const s of servers.splice(0)) await s.stop();
});

async function world(name: string, opts: { separateBackend?: boolean; visibilityMs?: number } = {}) {
  const redis = await startRedis();
  servers.push(redis);
  const backend = opts.separateBackend ? await startRedis() : undefined;
  if (backend) servers.push(backend);
  const client = createApp({ broker: redis.url, ...(backend ? { backend: backend.url } : {}) });
  clients.push(client);
  const effects = join(dir, `${name}.jsonl`);
  const env: Record<string, string> = {
    CELERIAC_BROKER_URL: redis.url,
    EFFECTS_FILE: effects,
    FIXTURE_VISIBILITY_MS: String(opts.visibilityMs ?? 30_000),
    ...(backend ? { CELERIAC_RESULT_BACKEND: backend.url } : {}),
  };
  return { redis, backend, client, effects, env };
}

/** Tags with an `end` effect, counted: a task that ran to its end twice shows 2. */
function endsByTag(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of readEffects(file)) if (e.kind === 'end') counts.set(String(e.tag), (counts.get(String(e.tag)) ?? 0) + 1);
  return counts;
}

describe('Redis outages (issue #15)', () => {
  it('a 10 s Redis restart (kill -9) under a busy worker: the worker settles what it held and consumes again', async () => {
    const { redis, client, effects, env } = await world('restart-10s');
    const worker = await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    const sent: AsyncResult<string>[] = [];
    for (let i = 0; i < 60; i++) sent.push(await client.sendTask<string>('tasks.sleepy', [500, `t${i}`]));
    await waitFor(() => readEffects(effects).filter((e) => e.kind === 'start').length >= 6, 'tasks running', 20_000);
    await redis.kill9();
    // The outage itself (a fault's duration, not a wait for something to happen).
    await sleep(10_000);
    await redis.restart();
    for (const r of sent) expect(await r.get({ timeout: 60_000 })).toMatch(/^t\d+$/);
    const after = await client.sendTask<number>('tasks.add', [2, 3]);
    expect(await after.get({ timeout: 10_000 })).toBe(5);
    const ends = endsByTag(effects);
    expect([...ends.keys()].sort()).toEqual(Array.from({ length: 60 }, (_, i) => `t${i}`).sort());
    expect(worker.proc.exitCode).toBeNull();
    const admin = new Redis(redis.url);
    try {
      expect(await admin.hlen('unacked')).toBe(0);
      expect(await admin.llen('celery')).toBe(0);
    } finally {
      admin.disconnect();
    }
  }, 150_000);

  it('a result-backend outage of 8 s while tasks finish: each task runs once and its SUCCESS is stored when the backend returns', async () => {
    const { backend, client, effects, env } = await world('backend-outage', { separateBackend: true });
    await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    const sent: AsyncResult<string>[] = [];
    for (let i = 0; i < 100; i++) sent.push(await client.sendTask<string>('tasks.sleepy', [200, `b${i}`]));
    await waitFor(() => readEffects(effects).filter((e) => e.kind === 'end').length >= 8, 'some tasks done', 20_000);
    await backend!.kill9();
    await sleep(8_000);
    await backend!.restart();
    for (const r of sent) expect(await r.get({ timeout: 60_000 })).toMatch(/^b\d+$/);
    const ends = endsByTag(effects);
    expect(ends.size).toBe(100);
    // No finished task was run again because its outcome could not be stored.
    expect([...ends.entries()].filter(([, n]) => n > 1)).toEqual([]);
    expect(await (await client.transport()).listDeadLetters()).toEqual([]);
  }, 150_000);

  for (const how of ['suspend', 'cancel_consumer', 'warm shutdown'] as const) {
    it(`${how} while a task longer than the visibility window runs: the task is not run a second time elsewhere`, async () => {
      const { client, effects, env } = await world(`held-${how.replace(' ', '-')}`, { visibilityMs: 2000 });
      const [a] = await Promise.all([startWorker(['-A', FIXTURE_APP, '-c', '1', '-n', 'a@test'], env), startWorker(['-A', FIXTURE_APP, '-c', '1', '-n', 'b@test'], env)]);
      // Whichever worker starts it is the owner acted on; the other is there to take it if the owner's lease lapses.
      const long = await client.sendTask<string>('tasks.sleepy', [8000, 'long']);
      const start = await waitFor(() => readEffects(effects).find((e) => e.kind === 'start' && e.tag === 'long'), 'long task started', 20_000);
      const owner = start.pid === a.pid ? 'a@test' : 'b@test';
      if (how === 'suspend') {
        const out = celeriac(['suspend', '-b', env.CELERIAC_BROKER_URL!, '-d', owner], env);
        expect(await out.exited).toBe(0);
      } else if (how === 'cancel_consumer') {
        const out = celeriac(['control', '-b', env.CELERIAC_BROKER_URL!, '-d', owner, 'cancel_consumer', 'celery'], env);
        expect(await out.exited).toBe(0);
      } else {
        process.kill(start.pid, 'SIGTERM');
      }
      expect(await long.get({ timeout: 40_000 })).toBe('long');
      const starts = readEffects(effects).filter((e) => e.kind === 'start' && e.tag === 'long');
      expect(starts.map((s) => s.pid)).toEqual([start.pid]);
    }, 90_000);
  }

  it('suspend on the embedded SQLite broker while a task longer than the visibility window runs: not run a second time', async () => {
    const url = `sqlite://${join(dir, 'held-sqlite.db')}`;
    const effects = join(dir, 'held-sqlite.jsonl');
    const env = { CELERIAC_BROKER_URL: url, EFFECTS_FILE: effects, FIXTURE_VISIBILITY_MS: '2000' };
    const client = createApp({ broker: url });
    clients.push(client);
    const [a] = await Promise.all([startWorker(['-A', FIXTURE_APP, '-c', '1', '-n', 'a@sqlite'], env), startWorker(['-A', FIXTURE_APP, '-c', '1', '-n', 'b@sqlite'], env)]);
    const long = await client.sendTask<string>('tasks.sleepy', [8000, 'long']);
    const start = await waitFor(() => readEffects(effects).find((e) => e.kind === 'start' && e.tag === 'long'), 'long task started', 20_000);
    const out = celeriac(['suspend', '-b', url, '-d', start.pid === a.pid ? 'a@sqlite' : 'b@sqlite'], env);
    expect(await out.exited).toBe(0);
    expect(await long.get({ timeout: 40_000 })).toBe('long');
    const starts = readEffects(effects).filter((e) => e.kind === 'start' && e.tag === 'long');
    expect(starts.map((e) => e.pid)).toEqual([start.pid]);
  }, 90_000);

  it('get() without a timeout across a Redis restart answers once the result is stored (a push missed while reconnecting is re-read)', async () => {
    const { redis, client } = await world('get-restart');
    const result = client.asyncResult<number>('00000000-0000-4000-8000-00000000abcd');
    let answered: unknown;
    const waiting = result.get().then((v) => (answered = v));
    // Subscribed (the wait's SUBSCRIBE reached Redis) before the fault.
    const admin = new Redis(redis.url);
    try {
      await waitFor(async () => (await admin.pubsub('NUMSUB', 'celery-task-meta-00000000-0000-4000-8000-00000000abcd'))[1] === 1, 'wait subscribed');
    } finally {
      admin.disconnect();
    }
    await redis.kill9();
    await sleep(10_000);
    await redis.restart();
    // Stored (and published) at once after the restart, as a worker that retried its store would: before the
    // client's subscriber is back, so only a re-read finds it.
    const writer = new Redis(redis.url);
    try {
      const meta = { status: 'SUCCESS', result: 42, traceback: null, children: [], date_done: new Date().toISOString(), task_id: '00000000-0000-4000-8000-00000000abcd' };
      await writer.set('celery-task-meta-00000000-0000-4000-8000-00000000abcd', JSON.stringify(meta));
      await writer.publish('celery-task-meta-00000000-0000-4000-8000-00000000abcd', JSON.stringify(meta));
    } finally {
      writer.disconnect();
    }
    await waitFor(() => answered !== undefined, 'get() answered after the restart', 20_000, 100);
    expect(answered).toBe(42);
    await waiting;
  }, 60_000);
});
