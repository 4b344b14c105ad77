import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { createApp, ErrorCodes, type AsyncResult, type CeleriacApp } from '@celeriac/core';
import { FIXTURE_APP, startWorker } from '../helpers/processes.js';
import { readEffects } from '../helpers/effects.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../servers/redis.js';

const dir = tempDir('celeriac-redis-faults-');
const servers: RedisServer[] = [];
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const s of servers.splice(0)) await s.stop();
});

async function world(name: string) {
  const redis = await startRedis();
  servers.push(redis);
  const client = createApp({ broker: redis.url });
  clients.push(client);
  const effects = join(dir, `${name}.jsonl`);
  return { redis, client, effects, env: { CELERIAC_BROKER_URL: redis.url, EFFECTS_FILE: effects, FIXTURE_VISIBILITY_MS: '3000' } };
}

describe('Redis faults', () => {
  it('kill -9 of redis-server under enqueue load with appendfsync always: no acknowledged enqueue is lost (T14a at CI size)', async () => {
    const { redis, client, env } = await world('t14');
    const confirmed: AsyncResult<number>[] = [];
    let failures = 0;
    let killed = false;
    const producer = (async () => {
      for (let i = 0; i < 1500; i++) {
        try {
          confirmed.push(await client.sendTask<number>('tasks.add', [i, 1]));
        } catch (err) {
          expect((err as { code?: string }).code).toBe(ErrorCodes.BROKER_UNAVAILABLE);
          failures++;
          if (killed && failures > 20) return;
        }
        if (i === 500) {
          killed = true;
          void redis.kill9();
        }
      }
    })();
    await producer;
    await redis.kill9();
    await redis.restart();
    await startWorker(['-A', FIXTURE_APP, '-c', '8'], env);
    for (const r of confirmed) expect(typeof (await r.get({ timeout: 30_000 }))).toBe('number');
    expect(confirmed.length).toBeGreaterThan(500);
  });

  it('redis-server restarts with tasks in flight: workers resume on their own and every task completes (T15 at CI size)', async () => {
    const { redis, client, env, effects } = await world('t15');
    const worker = await startWorker(['-A', FIXTURE_APP, '-c', '8'], env);
    const rs = [];
    // Two rounds: each time 8 tasks are running when redis-server is killed and restarted.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 8; i++) {
        // Publishers fail fast while redis-server is coming back: the producer retries, as an application would.
        rs.push(await waitFor(() => client.sendTask('tasks.sleepy', [1500, `r${round}-${i}`]).catch(() => undefined), 'publish accepted', 20_000, 100));
      }
      await waitFor(() => readEffects(effects).filter((e) => e.kind === 'start' && String(e.tag).startsWith(`r${round}-`)).length >= 8, `round ${round} in flight`, 20_000);
      await redis.kill9();
      await redis.restart();
    }
    for (const r of rs) await r.get({ timeout: 30_000 });
    // Resumed consuming: a new task after the restarts completes promptly.
    expect(await (await client.sendTask<number>('tasks.add', [2, 2])).get({ timeout: 10_000 })).toBe(4);
    expect(worker.proc.exitCode).toBeNull();
    const ends = readEffects(effects).filter((e) => e.kind === 'end').map((e) => e.tag);
    expect(new Set(ends)).toEqual(new Set([0, 1].flatMap((round) => Array.from({ length: 8 }, (_, i) => `r${round}-${i}`))));
  });

  it('a paused Redis makes publishers fail fast with BROKER_UNAVAILABLE, and work resumes after (T16 at CI size)', async () => {
    const { redis, client, env } = await world('t16');
    await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    expect(await (await client.sendTask<number>('tasks.add', [1, 1])).get({ timeout: 10_000 })).toBe(2);
    const admin = new Redis(redis.url);
    try {
      await admin.client('PAUSE', 4000, 'ALL');
      const started = Date.now();
      const err = await client.sendTask('tasks.add', [2, 2]).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe(ErrorCodes.BROKER_UNAVAILABLE);
      expect(Date.now() - started).toBeLessThanOrEqual(2500);
      await waitFor(async () => {
        try {
          return (await (await client.sendTask<number>('tasks.add', [3, 3])).get({ timeout: 5000 })) === 6;
        } catch {
          return false;
        }
      }, 'work resumes after the pause', 20_000, 200);
    } finally {
      admin.disconnect();
    }
  });
});
