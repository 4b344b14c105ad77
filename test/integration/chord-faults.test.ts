import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { chord, createApp, group, type CeleriacApp } from '@celeriac/core';
import { FIXTURE_APP, startWorker, type Spawned } from '../helpers/processes.js';
import { readEffects } from '../helpers/effects.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const dir = tempDir('celeriac-chord-faults-');
const apps: CeleriacApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

function world(name: string) {
  const prefix = `${name}-${process.pid}:`;
  const url = `${inject('redisUrl')}?keyPrefix=${prefix}`;
  const effects = join(dir, `${name}.jsonl`);
  const env = { CELERIAC_BROKER_URL: url, EFFECTS_FILE: effects, CELERIAC_LOGLEVEL: 'info' };
  const client = createApp({ broker: url });
  apps.push(client);
  const index = client.declareTask<[number, number], number>('tasks.index');
  const recordSum = client.declareTask<[number[]], number>('tasks.record_sum');
  return { prefix, env, effects, client, index, recordSum };
}

describe('chords under faults, on Redis', () => {
  it('T18 at CI size: a 1,000-member chord with workers killed during the header runs its body exactly once, with every result in order', async () => {
    const { prefix, env, effects, client, index, recordSum } = world('t18');
    const raw = new Redis(inject('redisUrl'));
    try {
      const size = 1000;
      const r = await client.send(chord(Array.from({ length: size }, (_, i) => index.s(i, 15)), recordSum.s()));
      const workers: Spawned[] = [await startWorker(['-A', FIXTURE_APP, '-c', '4'], env), await startWorker(['-A', FIXTURE_APP, '-c', '4'], env)];
      let maxMembers = 0;
      for (let k = 0; k < 4; k++) {
        await waitFor(() => readEffects(effects).filter((e) => e.kind === 'index').length >= ((k + 1) * size) / 6, `header progress before kill ${k + 1}`, 60_000);
        const keys = await raw.keys(`${prefix}celery-taskset-meta-*.j`);
        for (const key of keys) maxMembers = Math.max(maxMembers, await raw.zcard(key));
        const victim = k % 2;
        workers[victim]!.proc.kill('SIGKILL');
        await workers[victim]!.exited;
        workers[victim] = await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
      }
      expect(await r.get({ timeout: 120_000 })).toBe((size * (size - 1)) / 2);
      expect(await r.state()).toBe('SUCCESS');
      // The join counts each member once however often it ran: never more members than the header has.
      expect(maxMembers).toBeLessThanOrEqual(size);
      const ran = readEffects(effects).filter((e) => e.kind === 'index').length;
      expect(ran).toBeGreaterThanOrEqual(size);
      await waitFor(() => readEffects(effects).some((e) => e.kind === 'body'), 'the body effect');
      const bodies = readEffects(effects).filter((e) => e.kind === 'body');
      expect(bodies).toHaveLength(1);
      expect(bodies[0]).toMatchObject({ sum: 499_500, length: size, ordered: true });
      // The join keys are deleted when the chord completes. A member that ran twice and reports after that
      // recreates the members key as Celery's own backend does (a Python client may set the size key only
      // after its members started, so a member is always recorded) — with a TTL, so nothing leaks.
      for (const key of await raw.keys(`${prefix}celery-taskset-meta-*`)) expect(await raw.pttl(key), key).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
    }
  }, 180_000);

  it('T20 at CI size: a 5,000-member chord on 2 workers runs its body once; a 5,000-member group joins promptly after its last result', async () => {
    const { env, effects, client, index, recordSum } = world('t20');
    const size = 5000;
    const rssBefore = process.memoryUsage().rss;
    const r = await client.send(chord(Array.from({ length: size }, (_, i) => index.s(i, 0)), recordSum.s()));
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * 1024 * 1024);
    await startWorker(['-A', FIXTURE_APP, '-c', '8'], env);
    await startWorker(['-A', FIXTURE_APP, '-c', '8'], env);
    expect(await r.get({ timeout: 120_000 })).toBe((size * (size - 1)) / 2);
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'body'), 'the body effect');
    expect(readEffects(effects).filter((e) => e.kind === 'body')).toHaveLength(1);
    const g = await client.send(group(Array.from({ length: size }, (_, i) => index.s(i, 0))));
    const values = await g.get({ timeout: 120_000 });
    expect(values).toHaveLength(size);
    expect(values.every((v, i) => v === i)).toBe(true);
  }, 240_000);
});
