import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { Beat, RedisBeatStore, slotTaskId, type BeatLogger } from '@celeriac/beat';
import { createApp, fromKombuEnvelope, fromWire, parseUrl, redisSettings, type CeleriacApp } from '@celeriac/core/spi';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

let n = 0;
/** A fresh key prefix: one beat store's keys on the run's Redis (which stays up while the broker goes down). */
const storePrefix = (): string => `beatretry${process.pid}-${++n}:`;
async function openStore(prefix: string): Promise<RedisBeatStore> {
  const store = await RedisBeatStore.open(redisSettings(parseUrl('broker', `${inject('redisUrl')}?keyPrefix=${prefix}`, ['redis'])));
  cleanups.push(() => store.close());
  return store;
}

type Log = { level: string; obj: Record<string, unknown> };
const recorder = (logs: Log[]): BeatLogger => ({
  info: (obj) => void logs.push({ level: 'info', obj: obj as Record<string, unknown> }),
  warn: (obj) => void logs.push({ level: 'warn', obj: obj as Record<string, unknown> }),
  error: (obj) => void logs.push({ level: 'error', obj: obj as Record<string, unknown> }),
});

/** Task ids of the messages in the broker's `celery` queue (no worker consumes them here). */
async function queued(broker: RedisServer): Promise<string[]> {
  const raw = new Redis(broker.url, { maxRetriesPerRequest: 1 });
  try {
    return (await raw.lrange('celery', 0, -1)).map((text) => fromWire(fromKombuEnvelope(text).wire).headers.id);
  } finally {
    raw.disconnect();
  }
}

describe('beat against a Redis broker that goes away (kill -9) and comes back', () => {
  it('the slot whose send failed is sent once the broker is back, exactly once, with two beats running', async () => {
    const broker = await startRedis();
    cleanups.push(() => broker.stop());
    const logs: Log[] = [];
    const prefix = storePrefix();
    const beats: Beat[] = [];
    let store!: RedisBeatStore;
    for (let i = 0; i < 2; i++) {
      // Each beat has its own app and store connection, as its own process would; they share the store's keys.
      const app: CeleriacApp = createApp({ broker: broker.url });
      cleanups.push(() => app.close());
      app.beat.schedule({ name: 'tick', task: 'tasks.tick', schedule: { every: '10s' } });
      await app.transport(); // connected before the outage, as a running beat is
      store = await openStore(prefix);
      const beat = new Beat(app, { store, leaseMs: 3000, logger: recorder(logs) });
      cleanups.push(() => beat.stop());
      beats.push(beat);
    }
    const [a, b] = beats as [Beat, Beat];
    a.start();
    b.start();
    await waitFor(() => a.isLeader || b.isLeader, 'a leader');

    // The first slot after the kill is the one whose send fails (the beats' reference clock is the store's Redis TIME).
    const slot = (Math.floor((await store.time()) / 10_000) + 1) * 10_000;
    await broker.kill9();
    const brokerDown = (l: Log): boolean => (l.obj.err as { code?: string } | undefined)?.code === 'BROKER_UNAVAILABLE';
    await waitFor(() => logs.some(brokerDown), 'a send of the due slot failing', 15_000);
    await broker.restart();

    const id = slotTaskId('tick', slot);
    await waitFor(async () => (await queued(broker)).includes(id), 'the failed slot sent once the broker is back', 15_000, 50);
    // Beat carries on: the next slot goes out too (and any second copy of the first would be in the queue by now).
    await waitFor(async () => (await queued(broker)).includes(slotTaskId('tick', slot + 10_000)), 'the next slot', 20_000, 100);
    await a.stop();
    await b.stop();
    const ids = await queued(broker);
    expect(ids.filter((x) => x === id)).toHaveLength(1);
    expect(new Set(ids).size).toBe(ids.length);
    expect(logs.filter((l) => l.obj.code === 'BEAT_SEND_ABANDONED')).toEqual([]);
    expect(logs.filter(brokerDown).every((l) => l.obj.code === 'BEAT_SEND_FAILED' && l.obj.slot === new Date(slot).toISOString())).toBe(true);
    expect((a.sent.get('tick') ?? 0) + (b.sent.get('tick') ?? 0)).toBe(ids.length);
  });

  it('the Redis beat store gives a claim back to its owner only', async () => {
    const s = await openStore(storePrefix());
    expect(await s.claimSlot('e', 1, 60_000, 'a')).toBe(true);
    expect(await s.claimSlot('e', 1, 60_000, 'b')).toBe(false);
    await s.releaseSlot('e', 1, 'b');
    expect(await s.claimSlot('e', 1, 60_000, 'b')).toBe(false);
    await s.releaseSlot('e', 1, 'a');
    expect(await s.claimSlot('e', 1, 60_000, 'b')).toBe(true);
    expect(await s.claimSlot('e', 2, 60_000)).toBe(true);
    await s.releaseSlot('e', 2, '1');
    expect(await s.claimSlot('e', 2, 60_000, 'a')).toBe(false);
  });
});
