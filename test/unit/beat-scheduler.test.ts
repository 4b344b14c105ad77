import { afterEach, describe, expect, it } from 'vitest';
import { Beat, BeatSchedules, MemoryBeatStore, SqliteBeatStore, slotTaskId } from '@celeriac/beat';
import { createApp, fromWire, type CeleriacApp, type WireMessage } from '@celeriac/core/spi';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { memoryUrl } from '../helpers/wait.js';

const apps: CeleriacApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

/** An app whose published task ids are recorded, and a clock the test moves. */
async function setup(entries: Parameters<CeleriacApp['beat']['schedule']>[0]) {
  const app = createApp({ broker: memoryUrl('beat') });
  apps.push(app);
  app.beat.schedule(entries);
  const sent: string[] = [];
  const transport = await app.transport();
  const publish = transport.publish.bind(transport);
  transport.publish = async (queue: string, message: WireMessage, options) => {
    sent.push(fromWire(message).headers.id);
    return publish(queue, message, options);
  };
  const clock = { now: Date.parse('2026-06-01T12:00:00.000Z') };
  const store = new MemoryBeatStore(() => clock.now);
  return { app, sent, clock, store };
}

const MIN = 60_000;

describe('beat scheduler with an injected clock', () => {
  it('sends each slot of an interval once, with a task id naming the slot', async () => {
    const { app, sent, clock, store } = await setup({ name: 'tick', task: 'tasks.tick', schedule: { every: '1m' } });
    const beat = new Beat(app, { store });
    await beat.tick(); // learns its next slot (12:01)
    expect(sent).toEqual([]);
    for (let i = 0; i < 3; i++) {
      clock.now += MIN;
      await beat.tick();
      await beat.tick(); // a second tick in the same slot sends nothing more
    }
    expect(sent).toEqual([1, 2, 3].map((m) => slotTaskId('tick', Date.parse(`2026-06-01T12:0${m}:00.000Z`))));
  });

  it.each([
    ['skip', 0],
    ['runOnce', 1],
    [{ catchUp: 3 }, 3],
  ] as const)('after 5 minutes down, missed policy %j sends %i run(s), newest slots, in order (T26)', async (missed, expected) => {
    const { app, sent, clock, store } = await setup({ name: 'm', task: 'tasks.tick', schedule: { every: '1m' }, missed, graceMs: 10_000 });
    const beat = new Beat(app, { store });
    await beat.tick();
    clock.now += 5 * MIN + 30_000; // down past 5 slots, 30 s after the last one (beyond grace)
    await beat.tick();
    expect(sent).toHaveLength(expected);
    const slots = sent.map((id) => Date.parse(id.split(':').slice(2).join(':')));
    expect([...slots].sort((a, b) => a - b)).toEqual(slots);
    if (expected > 0) expect(slots[slots.length - 1]).toBe(Date.parse('2026-06-01T12:05:00.000Z'));
    // Then it carries on at the next slot.
    clock.now = Date.parse('2026-06-01T12:06:00.000Z');
    await beat.tick();
    expect(sent).toHaveLength(expected + 1);
  });

  it('a restart within the grace window neither skips the due run nor fires a burst', async () => {
    const { app, sent, clock, store } = await setup({ name: 'r', task: 'tasks.tick', schedule: { every: '1m' } });
    const first = new Beat(app, { store });
    await first.tick();
    await first.stop();
    clock.now += MIN + 20_000; // the 12:01 slot came while no beat ran; back 20 s later
    const second = new Beat(app, { store });
    await second.tick();
    expect(sent).toEqual([slotTaskId('r', Date.parse('2026-06-01T12:01:00.000Z'))]);
  });

  it('two beats: only the lease holder sends; a killed leader is replaced after its lease; a stale leader that wakes sends nothing', async () => {
    const { app, sent, clock, store } = await setup({ name: 'x', task: 'tasks.tick', schedule: { every: '1s' } });
    const warnings: string[] = [];
    const logger = { info() {}, error() {}, warn: (o: object) => void warnings.push(JSON.stringify(o)) };
    const a = new Beat(app, { store, leaseMs: 3000, logger });
    const b = new Beat(app, { store, leaseMs: 3000 });
    for (let i = 0; i < 5; i++) {
      clock.now += 1000;
      await a.tick();
      await b.tick();
    }
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    // a stops ticking (killed / paused); b takes over once the lease ran out.
    for (let i = 0; i < 5; i++) {
      clock.now += 1000;
      await b.tick();
    }
    expect(b.isLeader).toBe(true);
    // a wakes up: it learns it lost the lease and sends nothing.
    const before = sent.length;
    await a.tick();
    expect(a.isLeader).toBe(false);
    expect(sent.length).toBe(before);
    expect(warnings.join()).toContain('LEADERSHIP_LOST');
    expect(new Set(sent).size).toBe(sent.length);
  });

  it('even two beats that both believe they lead send each slot once (the per-slot claim)', async () => {
    const { app, sent, clock } = await setup({ name: 'y', task: 'tasks.tick', schedule: { every: '1s' } });
    const shared = new MemoryBeatStore(() => clock.now);
    // Each beat gets a store that always grants the lease but shares claims and state.
    const always = (): MemoryBeatStore => Object.assign(Object.create(shared) as MemoryBeatStore, { acquireLeadership: async () => true });
    const a = new Beat(app, { store: always() });
    const b = new Beat(app, { store: always() });
    for (let i = 0; i < 5; i++) {
      clock.now += 1000;
      await Promise.all([a.tick(), b.tick()]);
    }
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(new Set(sent).size).toBe(sent.length);
  });

  it('the run-time API persists entries; an edited entry recomputes its next run; disabled entries do not send', async () => {
    const { app, sent, clock, store } = await setup([]);
    const api = new BeatSchedules(store, () => app.beat.entries());
    await api.add({ name: 'dyn', task: 'tasks.tick', schedule: { every: '10m' } });
    const beat = new Beat(app, { store });
    await beat.tick();
    expect((await api.list())[0]!.state?.nextRunAt).toBe(Date.parse('2026-06-01T12:10:00.000Z'));
    await api.update('dyn', { schedule: { every: '1m' } });
    await beat.tick();
    expect((await api.list())[0]!.state?.nextRunAt).toBe(Date.parse('2026-06-01T12:01:00.000Z'));
    await api.disable('dyn');
    clock.now += 2 * MIN;
    await beat.tick();
    expect(sent).toEqual([]);
    await api.enable('dyn');
    await beat.tick();
    expect(sent).toHaveLength(1);
    expect(await api.remove('dyn')).toBe(true);
    expect(await api.list()).toEqual([]);
    await expect(api.add({ name: 'bad', task: 't', schedule: { cron: 'nope' } })).rejects.toThrow(/invalid cron/);
  });
});

describe('beat state on the embedded store', () => {
  it('survives a restart of the store: last and next run are read back, the lease is exclusive', async () => {
    const path = join(tempDir('celeriac-beat-'), 'beat.db');
    const clock = { now: Date.parse('2026-06-01T12:00:00.000Z') };
    const s1 = await SqliteBeatStore.open(path, () => clock.now);
    expect(await s1.acquireLeadership('a', 5000)).toBe(true);
    expect(await s1.claimSlot('e', 1, 60_000)).toBe(true);
    await s1.setState('e', { lastRunAt: 1, nextRunAt: 2, scheduleKey: 'k' });
    await s1.close();
    const s2 = await SqliteBeatStore.open(path, () => clock.now);
    expect(await s2.acquireLeadership('b', 5000)).toBe(false);
    expect(await s2.claimSlot('e', 1, 60_000)).toBe(false);
    expect(await s2.getState('e')).toEqual({ lastRunAt: 1, nextRunAt: 2, scheduleKey: 'k' });
    clock.now += 6000;
    expect(await s2.acquireLeadership('b', 5000)).toBe(true);
    await s2.close();
  });
});
