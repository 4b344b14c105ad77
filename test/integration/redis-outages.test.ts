import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type CeleriacApp } from '@celeriac/core';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { readRuns } from '../harness/history.js';
import { expectAL1, RedisWorld } from '../harness/redis-world.js';
import { startRedis, type RedisServer } from '../servers/redis.js';

/**
 * The faults of issue #15 as an operator met them, each reproduced as found (outages as long as real
 * ones: a fault that lasts 10 s is not the same fault as one that lasts 1 s), judged by the history
 * checker like every fault test.
 */
const dir = tempDir('celeriac-redis-outages-');
const servers: RedisServer[] = [];
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const s of servers.splice(0)) await s.stop();
});

/** Wait until `n` runs have started (of any task). */
const started = (world: RedisWorld, n: number) => waitFor(() => readRuns(world.runsFile).length >= n, `${n} runs started`, 20_000);

describe('Redis outages (issue #15)', () => {
  it('a 10 s Redis restart (kill -9) under a busy worker: the worker settles what it held and consumes again', async () => {
    const world = await RedisWorld.start({ visibilityMs: 30_000 });
    const worker = await world.startWorker(['-c', '4']);
    await world.produce(60, () => 500);
    await started(world, 6);
    await world.faults.during('redis kill -9, 10 s down', async () => {
      await world.broker.kill9();
      await sleep(10_000); // the outage itself (a fault's duration, not a wait for something to happen)
      await world.broker.restart();
    });
    await expectAL1(world);
    const after = await world.client.sendTask<number>('hist.pid');
    expect(await after.get({ timeout: 10_000 })).toBe(worker.pid);
    expect(worker.proc.exitCode).toBeNull();
    const admin = new Redis(world.broker.url);
    try {
      expect(await admin.hlen('unacked')).toBe(0);
      expect(await admin.llen('celery')).toBe(0);
    } finally {
      admin.disconnect();
    }
  }, 150_000);

  it('a result-backend outage of 8 s while tasks finish: each task runs once and its SUCCESS is stored when the backend returns', async () => {
    const world = await RedisWorld.start({ visibilityMs: 30_000, separateBackend: true });
    await world.startWorker(['-c', '4']);
    const ids = await world.produce(100, () => 200);
    await waitFor(() => readRuns(world.runsFile).filter((r) => r.end !== undefined).length >= 8, 'some tasks done', 20_000);
    await world.faults.during('backend kill -9, 8 s down', async () => {
      await world.backend!.kill9();
      await sleep(8_000);
      await world.backend!.restart();
    });
    const report = await expectAL1(world);
    // No finished task was run again because its outcome could not be stored.
    expect(report.counts.duplicated).toBe(0);
    for (const id of ids) expect(await world.client.asyncResult<number>(id).get({ timeout: 60_000 })).toBeGreaterThan(0);
    expect(await (await world.client.transport()).deadLetterCount()).toBe(0);
  }, 150_000);

  /** A task 4× the lease on A, a second worker B, then A stops fetching: the task must not run on B too. */
  async function heldAfterCancel(how: 'suspend' | 'cancel_consumer' | 'warm shutdown', brokerUrl?: string): Promise<void> {
    const world = await RedisWorld.start({ visibilityMs: 2000, ...(brokerUrl ? { brokerUrl: () => brokerUrl } : {}) });
    const [a, b] = await Promise.all([world.startWorker(['-c', '1', '-n', 'a@test']), world.startWorker(['-c', '1', '-n', 'b@test'])]);
    const [id] = await world.produce(1, () => 8000);
    const run = await waitFor(() => readRuns(world.runsFile).find((r) => r.id === id), 'the long task started', 20_000);
    const owner = run.pid === a.pid ? 'a@test' : 'b@test';
    expect([a.pid, b.pid]).toContain(run.pid);
    if (how === 'suspend') expect(await world.cli(['suspend', '-d', owner]).exited).toBe(0);
    else if (how === 'cancel_consumer') expect(await world.cli(['control', '-d', owner, 'cancel_consumer', 'celery']).exited).toBe(0);
    else process.kill(run.pid, 'SIGTERM');
    const report = await expectAL1(world);
    expect(report.counts.duplicated).toBe(0);
    // One run (its start and end records), on the owner: none started on the other worker.
    const runs = readRuns(world.runsFile).filter((r) => r.id === id);
    expect(new Set(runs.map((r) => `${r.pid}@${r.start}`))).toEqual(new Set([`${run.pid}@${run.start}`]));
  }

  for (const how of ['suspend', 'cancel_consumer', 'warm shutdown'] as const) {
    it(`${how} while a task longer than the visibility window runs: the task is not run a second time elsewhere`, () => heldAfterCancel(how), 90_000);
  }

  it('suspend on the embedded SQLite broker while a task longer than the visibility window runs: not run a second time', () => heldAfterCancel('suspend', `sqlite://${join(dir, 'held.db')}`), 90_000);

  it('get() without a timeout across a Redis restart answers once the result is stored (a push missed while reconnecting is re-read)', async () => {
    const redis = await startRedis();
    servers.push(redis);
    const client = createApp({ broker: redis.url });
    clients.push(client);
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
