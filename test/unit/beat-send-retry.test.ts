import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Beat, MemoryBeatStore, SqliteBeatStore, slotTaskId, type BeatLogger, type BeatStore } from '@celeriac/beat';
import { BrokerError, CeleriacError, createApp, ErrorCodes, fromWire, type CeleriacApp, type WireMessage } from '@celeriac/core/spi';
import { tempDir } from '../helpers/tmp.js';
import { memoryUrl, waitFor } from '../helpers/wait.js';

const apps: CeleriacApp[] = [];
const stores: BeatStore[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  for (const s of stores.splice(0)) await s.close();
});

const MIN = 60_000;
const T0 = Date.parse('2026-06-01T12:00:00.000Z');
const S = T0 + MIN; // the first slot of an every-minute entry after T0

type Clock = { now: number };
const storeKinds: [string, (clock: Clock) => Promise<BeatStore>][] = [
  ['memory', async (clock) => new MemoryBeatStore(() => clock.now)],
  ['sqlite', async (clock) => SqliteBeatStore.open(join(tempDir('celeriac-beat-retry-'), 'beat.db'), () => clock.now)],
];

/**
 * An app on a memory:// broker whose publish can be made to fail (as the real
 * transports fail: a BrokerError BROKER_UNAVAILABLE) or to hang, recording
 * every attempt and every message that went out.
 */
async function setup(entries: Parameters<CeleriacApp['beat']['schedule']>[0], makeStore: (clock: Clock) => Promise<BeatStore> = storeKinds[0]![1]) {
  const app = createApp({ broker: memoryUrl('beat-retry') });
  apps.push(app);
  app.beat.schedule(entries);
  const broker = {
    /** Decides, per attempt (0-based, across all beats), whether it fails. */
    fails: (_attempt: number): boolean => false,
    error: (): Error => new BrokerError(ErrorCodes.BROKER_UNAVAILABLE, 'memory broker unavailable (test)'),
    /** When set, a publish waits for it before failing or going out. */
    gate: undefined as Promise<void> | undefined,
    attempts: [] as string[],
    sent: [] as string[],
  };
  const transport = await app.transport();
  const publish = transport.publish.bind(transport);
  transport.publish = async (queue: string, message: WireMessage, options) => {
    const id = fromWire(message).headers.id;
    const attempt = broker.attempts.push(id) - 1;
    if (broker.gate) await broker.gate;
    if (broker.fails(attempt)) throw broker.error();
    await publish(queue, message, options);
    broker.sent.push(id);
  };
  const clock: Clock = { now: T0 };
  const store = await makeStore(clock);
  stores.push(store);
  const logs: { level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string }[] = [];
  const logger: BeatLogger = {
    info: (obj, msg) => void logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => void logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => void logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  const coded = (code: string) => logs.filter((l) => l.obj.code === code);
  // A tick that throws is recorded, not fatal: before the fix a failed send threw out of tick() and the slot was lost after.
  const tickErrors: unknown[] = [];
  const tick = (beat: Beat): Promise<number | undefined> => beat.tick().catch((err: unknown) => void tickErrors.push(err));
  return { app, broker, clock, store, logs, logger, coded, tick, tickErrors };
}

const every = (name: string, extra: Record<string, unknown> = {}) => ({ name, task: 'tasks.tick', schedule: { every: '1m' }, ...extra });

describe('beat: a failed send is retried, never skipped', () => {
  it.each(storeKinds)('BROKER_UNAVAILABLE three times: retried after 200, 400, 800 ms, then sent exactly once (%s store)', async (_kind, makeStore) => {
    const { app, broker, clock, store, logger, coded, tick, tickErrors } = await setup(every('tick'), makeStore);
    const beat = new Beat(app, { store, logger });
    await tick(beat); // learns its next slot, S
    broker.fails = (n) => n < 3;
    clock.now = S;
    expect(await tick(beat)).toBe(200); // attempt 1 failed: come back in 200 ms
    expect(await tick(beat)).toBe(200); // within the backoff: no attempt
    expect(broker.attempts).toHaveLength(1);
    for (const delay of [200, 400, 800]) {
      clock.now += delay;
      await tick(beat);
    }
    const id = slotTaskId('tick', S);
    expect(broker.attempts).toEqual([id, id, id, id]);
    expect(broker.sent).toEqual([id]);
    expect(coded('BEAT_SEND_FAILED').map((l) => [l.obj.attempt, l.obj.retryInMs])).toEqual([
      [1, 200],
      [2, 400],
      [3, 800],
    ]);
    // Nothing more for this slot; the next one goes out on time.
    clock.now += 10_000;
    await tick(beat);
    clock.now = S + MIN;
    await tick(beat);
    expect(broker.sent).toEqual([id, slotTaskId('tick', S + MIN)]);
    expect(beat.sent.get('tick')).toBe(2);
    expect(tickErrors).toEqual([]);
  });

  it('keeps retrying past the grace window while the slot is still the newest; the backoff is capped at 5 s', async () => {
    const { app, broker, clock, store, coded, logger, tick } = await setup(every('g', { graceMs: 10_000 }));
    const beat = new Beat(app, { store, logger });
    await tick(beat);
    broker.fails = () => true;
    clock.now = S;
    while (clock.now < S + 40_000) {
      clock.now += 1000;
      await tick(beat);
    }
    const delays = coded('BEAT_SEND_FAILED').map((l) => l.obj.retryInMs);
    expect(delays.slice(0, 6)).toEqual([200, 400, 800, 1600, 3200, 5000]);
    expect(Math.max(...(delays as number[]))).toBe(5000);
    broker.fails = () => false; // the broker is back, 40 s after the slot (four times the grace)
    clock.now += 5000;
    await tick(beat);
    expect(broker.sent).toEqual([slotTaskId('g', S)]);
    expect(coded('BEAT_SEND_ABANDONED')).toEqual([]);
  });

  it('gives up on a slot only when the entry’s next slot is due, as an error naming it, and sends that next slot once', async () => {
    const { app, broker, clock, store, coded, logger, tick } = await setup(every('d'));
    const beat = new Beat(app, { store, logger });
    await tick(beat);
    broker.fails = () => true;
    for (clock.now = S; clock.now < S + MIN; clock.now += 1000) await tick(beat);
    expect(coded('BEAT_SEND_ABANDONED')).toEqual([]);
    broker.fails = () => false;
    clock.now = S + MIN + 1000;
    await tick(beat);
    const abandoned = coded('BEAT_SEND_ABANDONED');
    expect(abandoned).toHaveLength(1);
    expect(abandoned[0]!.level).toBe('error');
    expect(abandoned[0]!.obj.slot).toBe(new Date(S).toISOString());
    expect(broker.sent).toEqual([slotTaskId('d', S + MIN)]);
  });

  it('with missed: {catchUp: 2}, the failed slot is still sent after the next one came due: both once, in order', async () => {
    const { app, broker, clock, store, coded, logger, tick } = await setup(every('c', { missed: { catchUp: 2 } }));
    const beat = new Beat(app, { store, logger });
    await tick(beat);
    broker.fails = () => true;
    for (clock.now = S; clock.now <= S + MIN + 5000; clock.now += 1000) await tick(beat);
    broker.fails = () => false;
    clock.now += 5000;
    await tick(beat);
    expect(broker.sent).toEqual([slotTaskId('c', S), slotTaskId('c', S + MIN)]);
    expect(coded('BEAT_SEND_ABANDONED')).toEqual([]);
  });

  it('a message the broker can never take (PAYLOAD_TOO_LARGE) is logged as an error and not retried; the next slot still goes out', async () => {
    const { app, broker, clock, store, coded, logger, tick } = await setup(every('p'));
    const beat = new Beat(app, { store, logger });
    await tick(beat);
    broker.fails = (n) => n === 0;
    broker.error = () => new CeleriacError(ErrorCodes.PAYLOAD_TOO_LARGE, 'too large (test)');
    for (clock.now = S; clock.now < S + 30_000; clock.now += 1000) await tick(beat);
    expect(broker.attempts).toEqual([slotTaskId('p', S)]);
    expect(coded('BEAT_SEND_FAILED').map((l) => [l.level, l.obj.permanent])).toEqual([['error', true]]);
    clock.now = S + MIN;
    await tick(beat);
    expect(broker.sent).toEqual([slotTaskId('p', S + MIN)]);
  });

  it('when the store cannot take the claim back after the failure, it is given back before the next attempt', async () => {
    const { app, broker, clock, store, logger, tick } = await setup(every('r'));
    let releaseFails = 1;
    // The beat store's own give-back fails once (a store outage), the rest of it is the real memory store.
    const flaky = Object.assign(Object.create(store) as MemoryBeatStore, {
      releaseSlot: async (name: string, slot: number, owner: string) => {
        if (releaseFails-- > 0) throw new Error('store unavailable (test)');
        return store.releaseSlot(name, slot, owner);
      },
    });
    const beat = new Beat(app, { store: flaky, logger });
    await tick(beat);
    broker.fails = (n) => n === 0;
    clock.now = S;
    await tick(beat);
    clock.now += 200;
    await tick(beat);
    expect(broker.sent).toEqual([slotTaskId('r', S)]);
    expect(releaseFails).toBe(-1); // tried once (failed) at the failure, once (worked) before the retry
  });
});

describe('beat: retries never send a slot twice across beats', () => {
  it('two beats that both believe they lead, on a broker failing two publishes in three: every slot sent, each once', async () => {
    const { app, broker, clock, tick, tickErrors } = await setup({ name: 'y', task: 'tasks.tick', schedule: { every: '1s' } });
    const shared = new MemoryBeatStore(() => clock.now);
    // Each beat gets a store that always grants the lease but shares claims and state.
    const always = (): MemoryBeatStore => Object.assign(Object.create(shared) as MemoryBeatStore, { acquireLeadership: async () => true });
    const options = { sendRetry: { initialMs: 100, maxMs: 100 } };
    const a = new Beat(app, { store: always(), ...options });
    const b = new Beat(app, { store: always(), ...options });
    broker.fails = (n) => n % 3 !== 2;
    for (let i = 0; i < 100; i++) {
      clock.now += 100;
      await Promise.all([tick(a), tick(b)]);
    }
    broker.fails = () => false;
    clock.now += 100;
    await Promise.all([tick(a), tick(b)]);
    const expected = Array.from({ length: 10 }, (_, i) => slotTaskId('y', T0 + 1000 * (i + 1)));
    expect([...broker.sent].sort()).toEqual(expected);
    expect(broker.attempts.length).toBeGreaterThan(broker.sent.length * 2); // the failures did happen
    expect(tickErrors).toEqual([]);
  });

  it('a leader whose send outlasts its lease: the new leader waits on the claim instead of skipping, and sends the slot once that send fails', async () => {
    const { app, broker, clock, store, coded, logger, tick } = await setup(every('h'));
    const a = new Beat(app, { store, leaseMs: 3000, logger });
    const b = new Beat(app, { store, leaseMs: 3000 });
    await tick(a);
    await tick(b);
    expect(a.isLeader).toBe(true);
    let open!: () => void;
    broker.gate = new Promise<void>((resolve) => (open = resolve));
    broker.fails = (n) => n === 0;
    clock.now = S;
    const stuck = tick(a); // a claims S and its publish hangs (waiting for a broker connection)
    await waitFor(() => broker.attempts.length === 1, "a's publish under way");
    clock.now += 4000; // a's lease runs out meanwhile
    await tick(b);
    expect(b.isLeader).toBe(true);
    expect(broker.attempts).toHaveLength(1); // b found S claimed: it neither sent it nor moved past it
    open();
    broker.gate = undefined;
    await stuck; // a's publish fails: a gives the claim back
    expect(coded('BEAT_SEND_FAILED')).toHaveLength(1);
    for (let i = 0; i < 20; i++) {
      clock.now += 250;
      await tick(b);
      await tick(a); // a learns it lost the lease and sends nothing
    }
    expect(a.isLeader).toBe(false);
    expect(broker.sent).toEqual([slotTaskId('h', S)]);
  });

  it.each(storeKinds)('a beat killed while a failed slot waits for its retry: its replacement sends that slot, once (%s store)', async (_kind, makeStore) => {
    const { app, broker, clock, store, tick } = await setup(every('k'), makeStore);
    const a = new Beat(app, { store, leaseMs: 3000 });
    await tick(a);
    broker.fails = (n) => n === 0;
    clock.now = S;
    await tick(a); // the send fails; a is killed before its retry (it never ticks again)
    const b = new Beat(app, { store, leaseMs: 3000 });
    clock.now += 1000;
    await tick(b);
    expect(b.isLeader).toBe(false); // a's lease still runs
    clock.now += 3000;
    await tick(b);
    expect(b.isLeader).toBe(true);
    expect(broker.sent).toEqual([slotTaskId('k', S)]);
  });
});

describe('beat stores: a claim is given back by its owner only', () => {
  it.each(storeKinds)('%s', async (_kind, makeStore) => {
    const clock = { now: T0 };
    const s = await makeStore(clock);
    stores.push(s);
    expect(await s.claimSlot('e', 1, 60_000, 'a')).toBe(true);
    expect(await s.claimSlot('e', 1, 60_000, 'b')).toBe(false);
    await s.releaseSlot('e', 1, 'b'); // not b's to give back
    expect(await s.claimSlot('e', 1, 60_000, 'b')).toBe(false);
    await s.releaseSlot('e', 1, 'a');
    expect(await s.claimSlot('e', 1, 60_000, 'b')).toBe(true);
    // A claim taken without an owner cannot be given back, whatever is passed.
    expect(await s.claimSlot('e', 2, 60_000)).toBe(true);
    await s.releaseSlot('e', 2, '1');
    await s.releaseSlot('e', 2, '');
    expect(await s.claimSlot('e', 2, 60_000, 'a')).toBe(false);
  });
});
