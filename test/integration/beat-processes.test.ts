import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, fromKombuEnvelope, fromWire, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, ROOT, type Spawned } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const PERIODIC = join(ROOT, 'test', 'fixtures', 'apps', 'periodic.ts');
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

async function startBeat(env: Record<string, string>): Promise<Spawned> {
  const b = celeriac(['beat', '-A', PERIODIC, '--lease', '2000'], env);
  await b.waitForOutput(/beat ready/);
  return b;
}

/** Slot ids of every tick message sitting in the queue (no worker consumes them here). */
async function queuedSlots(raw: Redis, prefix: string): Promise<string[]> {
  const items = await raw.lrange(`${prefix}celery`, 0, -1);
  return items.map((text) => fromWire(fromKombuEnvelope(text).wire).headers.id);
}

const leaderOf = (beats: Spawned[]): Spawned | undefined => beats.find((b) => /beat is the leader/.test(b.output()) && b.proc.exitCode === null);

describe('two beats against Redis (T23 at CI size)', () => {
  it('kill -9 and SIGSTOP of the leader: each slot is sent at most once, gaps only at the handovers, the stale leader stands down', async () => {
    const prefix = `beat${process.pid}:`;
    const env = { CELERIAC_BROKER_URL: `${inject('redisUrl')}?keyPrefix=${prefix}` };
    const raw = new Redis(inject('redisUrl'));
    try {
      let b1 = await startBeat(env);
      const b2 = await startBeat(env);
      await waitFor(async () => (await queuedSlots(raw, prefix)).length >= 3, 'three slots sent');
      // Kill the leader; restart it a moment later.
      const first = (await waitFor(() => leaderOf([b1, b2]), 'a leader'));
      first.proc.kill('SIGKILL');
      await first.exited;
      const survivor = first === b1 ? b2 : b1;
      await survivor.waitForOutput(/beat is the leader/, 10_000);
      const restarted = await startBeat(env);
      if (first === b1) b1 = restarted;
      const countBefore = (await queuedSlots(raw, prefix)).length;
      await waitFor(async () => (await queuedSlots(raw, prefix)).length >= countBefore + 3, 'the new leader sends');
      // Pause the leader for 3× its lease, then let it go on.
      const paused = survivor;
      paused.proc.kill('SIGSTOP');
      await restarted.waitForOutput(/beat is the leader/, 15_000);
      const countPaused = (await queuedSlots(raw, prefix)).length;
      await waitFor(async () => (await queuedSlots(raw, prefix)).length >= countPaused + 3, 'sending resumed during the pause');
      paused.proc.kill('SIGCONT');
      await paused.waitForOutput(/LEADERSHIP_LOST/, 10_000);
      const countAfter = (await queuedSlots(raw, prefix)).length;
      await waitFor(async () => (await queuedSlots(raw, prefix)).length >= countAfter + 2, 'still sending after the stale leader woke');
      const ids = await queuedSlots(raw, prefix);
      expect(new Set(ids).size).toBe(ids.length);
      // Slots are whole seconds; the only gaps are the two handovers (each at most the lease plus a tick).
      const slots = ids.map((id) => Date.parse(id.replace(/^beat:tick:/, ''))).sort((a, b) => a - b);
      for (const s of slots) expect(s % 1000).toBe(0);
      const span = (slots[slots.length - 1]! - slots[0]!) / 1000 + 1;
      expect(span - slots.length).toBeLessThanOrEqual(2 * (2 + 1) + 2);
    } finally {
      raw.disconnect();
    }
  });
});

describe('two beats with skewed clocks against Redis (T24 at CI size)', () => {
  it('slots come from Redis TIME: no duplicates and nothing sent early, whichever beat leads', async () => {
    const prefix = `skew${process.pid}:`;
    const base = { CELERIAC_BROKER_URL: `${inject('redisUrl')}?keyPrefix=${prefix}` };
    const raw = new Redis(inject('redisUrl'));
    const firstSeen = new Map<string, number>();
    let watching = true;
    // Watch the queue, noting the reference (Redis) time at which each slot's message first appears.
    const watcher = (async () => {
      while (watching) {
        const [s, us] = await raw.time();
        const t = Number(s) * 1000 + Math.floor(Number(us) / 1000);
        for (const id of await queuedSlots(raw, prefix)) if (!firstSeen.has(id)) firstSeen.set(id, t);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      const ahead = await startBeat({ ...base, CELERIAC_CLOCK_OFFSET_MS: '90000' });
      const behind = await startBeat({ ...base, CELERIAC_CLOCK_OFFSET_MS: '-90000' });
      const beats = [ahead, behind];
      // Force the leadership to switch twice: stop the leader (it releases the lease), start it again.
      for (let round = 0; round < 2; round++) {
        const count = firstSeen.size;
        await waitFor(() => firstSeen.size >= count + 2, 'slots sent');
        const leader = (await waitFor(() => leaderOf(beats), 'a leader'));
        leader.proc.kill('SIGTERM');
        await leader.exited;
        const replacement = await startBeat({ ...base, CELERIAC_CLOCK_OFFSET_MS: leader === ahead ? '90000' : '-90000' });
        beats[beats.indexOf(leader)] = replacement;
      }
      const count = firstSeen.size;
      await waitFor(() => firstSeen.size >= count + 2, 'slots sent after the last switch');
    } finally {
      watching = false;
      await watcher;
    }
    const ids = await queuedSlots(raw, prefix);
    raw.disconnect();
    expect(new Set(ids).size).toBe(ids.length);
    for (const [id, seen] of firstSeen) {
      const slot = Date.parse(id.replace(/^beat:tick:/, ''));
      expect(seen, id).toBeGreaterThanOrEqual(slot - 1000);
      // And not a full skew late either: the slot was sent by whichever beat led at the time.
      expect(seen - slot, id).toBeLessThan(60_000);
    }
  });
});

describe('celeriac worker -B', () => {
  it('runs beat inside the worker: periodic tasks are sent and run, on the embedded broker', async () => {
    const db = join(tempDir('celeriac-beat-b-'), 'b.db');
    const url = `sqlite://${db}`;
    const w = celeriac(['worker', '-A', PERIODIC, '-B'], { CELERIAC_BROKER_URL: url });
    await w.waitForOutput(/embedded beat started/);
    const client = createApp({ broker: url });
    clients.push(client);
    const backend = await client.backend();
    // Two ticks have run: their results are stored under their slot ids.
    await waitFor(async () => {
      const now = Math.floor(Date.now() / 1000) * 1000;
      const ids = Array.from({ length: 10 }, (_, i) => `beat:tick:${new Date(now - i * 1000).toISOString()}`);
      return (await backend.getMany(ids)).filter((m) => m?.status === 'SUCCESS').length >= 2;
    }, 'two periodic runs', 20_000, 100);
    const list = celeriac(['beat', 'list', '-A', PERIODIC, '--json'], { CELERIAC_BROKER_URL: url });
    expect(await list.exited).toBe(0);
    const [entry] = JSON.parse(list.output()) as { name: string; lastRunAt: string; nextRunAt: string }[];
    expect(entry!.name).toBe('tick');
    expect(Date.parse(entry!.nextRunAt)).toBeGreaterThan(Date.parse(entry!.lastRunAt));
  });
});
