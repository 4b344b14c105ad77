import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp, type CeleriacApp } from '@celeriac/core';
import { celeriac, ROOT, startWorker } from '../helpers/processes.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { readEffects, type Effect } from '../helpers/effects.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const FLEET = join(ROOT, 'test', 'fixtures', 'apps', 'fleet.ts');
const dir = tempDir('celeriac-fleet-');
const clients: CeleriacApp[] = [];
let n = 0;
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

function world(kind: 'sqlite' | 'redis') {
  const id = ++n;
  const url = kind === 'sqlite' ? `sqlite://${join(dir, `f${id}.db`)}` : `${inject('redisUrl')}?keyPrefix=fleet${process.pid}-${id}:`;
  const effects = join(dir, `effects-${id}.jsonl`);
  const env = { CELERIAC_BROKER_URL: url, EFFECTS_FILE: effects };
  const client = createApp({ name: 'fleet-client', broker: url });
  clients.push(client);
  return { env, effects, client };
}

/** The most intervals [start, end) of these runs open at one time. */
function mostAtOnce(effects: Effect[]): number {
  const edges = effects.filter((e) => e.kind === 'start' || e.kind === 'end').map((e) => [e.t, e.kind === 'start' ? 1 : -1] as const);
  // Ends before starts at the same ms: a run that ended as another began did not overlap it.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (open += d));
  return most;
}

describe.each(['sqlite', 'redis'] as const)('fleet-wide limits over %s, two worker processes', (kind) => {
  it("globalRateLimit '10/s': 60 tasks on 2 workers, the k-th start no earlier than k slots after the first send", async () => {
    const { env, effects, client } = world(kind);
    await Promise.all([startWorker(['-A', FLEET, '-c', '4'], env), startWorker(['-A', FLEET, '-c', '4'], env)]);
    const sentAt = Date.now();
    const results = [];
    for (let i = 0; i < 60; i++) results.push(await client.sendTask<number>('fleet.rated', [i]));
    const values = await Promise.all(results.map((r) => r.get({ timeout: 30_000 })));
    expect(values.sort((a, b) => a - b)).toEqual([...Array(60).keys()]);
    const starts = readEffects(effects).filter((e) => e.kind === 'start');
    expect(starts).toHaveLength(60);
    // Both workers ran some: the limit is the fleet's, not each one's.
    expect(new Set(starts.map((s) => s.pid)).size).toBe(2);
    const times = starts.map((s) => s.t).sort((a, b) => a - b);
    // One shared clock books slots 100 ms apart, and a task never starts before its slot.
    for (let k = 1; k < times.length; k++) expect(times[k]! - sentAt).toBeGreaterThanOrEqual(k * 100 - 5);
    expect(times[59]! - times[0]!).toBeGreaterThanOrEqual(5500);
  });

  it('rateLimitKey: each tenant gets the whole limit (5/s each), spaced on its own', async () => {
    const { env, effects, client } = world(kind);
    await Promise.all([startWorker(['-A', FLEET, '-c', '4'], env), startWorker(['-A', FLEET, '-c', '4'], env)]);
    const sentAt = Date.now();
    const results = [];
    for (let i = 0; i < 10; i++) for (const tenant of ['acme', 'globex']) results.push(await client.sendTask<number>('fleet.per_tenant', [tenant, i]));
    await Promise.all(results.map((r) => r.get({ timeout: 30_000 })));
    const starts = readEffects(effects).filter((e) => e.kind === 'start');
    for (const tenant of ['acme', 'globex']) {
      const times = starts.filter((s) => s.tenant === tenant).map((s) => s.t).sort((a, b) => a - b);
      expect(times).toHaveLength(10);
      for (let k = 1; k < times.length; k++) expect(times[k]! - sentAt).toBeGreaterThanOrEqual(k * 200 - 5);
    }
    // Under one shared 5/s limit every two starts would be 200 ms apart; with a bucket per tenant, the
    // tenants' k-th runs share a slot.
    const acme = starts.filter((s) => s.tenant === 'acme').map((s) => s.t);
    const globex = starts.filter((s) => s.tenant === 'globex').map((s) => s.t);
    expect(acme.some((a) => globex.some((g) => Math.abs(a - g) < 150))).toBe(true);
  });

  it('concurrencyLimit 2 per tenant: never more than 2 of a tenant run at once across both workers; the others wait without holding slots', async () => {
    const { env, effects, client } = world(kind);
    await Promise.all([startWorker(['-A', FLEET, '-c', '4'], env), startWorker(['-A', FLEET, '-c', '4'], env)]);
    const results = [];
    for (let i = 0; i < 6; i++) for (const tenant of ['acme', 'globex']) results.push(await client.sendTask<string>('fleet.limited', [tenant, 300]));
    await Promise.all(results.map((r) => r.get({ timeout: 60_000 })));
    const all = readEffects(effects);
    for (const tenant of ['acme', 'globex']) {
      const runs = all.filter((e) => e.tenant === tenant);
      expect(runs.filter((e) => e.kind === 'start')).toHaveLength(6);
      expect(mostAtOnce(runs)).toBe(2);
    }
    // Waiting tasks held no slots: the other tenant's tasks ran beside them (more than 2 at once in all).
    expect(mostAtOnce(all)).toBeGreaterThan(2);
  });
});

describe('fleet-wide rate slots on Redis', () => {
  it('slots are booked one interval apart by one clock, whichever process books them: never more than 10 slots of 10/s in any second', async () => {
    const { client } = world('redis');
    const other = createApp({ name: 'fleet-other', broker: client.config.broker.url.href });
    clients.push(other);
    const backends = await Promise.all([client.backend(), other.backend()]);
    const slots = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const wait = await backends[i % 2]!.reserveRateSlot!('fleet.booking', 'fleet.booking', 100);
        return Date.now() + wait;
      }),
    );
    slots.sort((a, b) => a - b);
    // Each booking returns the wait on the store's clock; read locally, a few ms of jitter remain.
    for (let k = 1; k < slots.length; k++) expect(slots[k]! - slots[k - 1]!).toBeGreaterThanOrEqual(90);
    for (let k = 10; k < slots.length; k++) expect(slots[k]! - slots[k - 10]!).toBeGreaterThanOrEqual(990);
  });

});

describe('a crashed holder of a concurrency lease (Redis)', () => {
  it('kill -9 of the worker holding the only lease: the next task runs once the lease expires (30 s), not before', async () => {
    const { env, effects, client } = world('redis');
    // The killed worker's message comes back only after 120 s: the lease, not the redelivery, frees the slot.
    const slow = { ...env, FIXTURE_VISIBILITY_MS: '120000' };
    const holder = await startWorker(['-A', FLEET, '-c', '2'], slow);
    const first = await client.sendTask<number>('fleet.exclusive', [600_000]);
    const started = await (async () => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        const s = readEffects(effects).find((e) => e.kind === 'start' && e.id === first.id);
        if (s) return s;
      }
      throw new Error('the first task never started');
    })();
    holder.proc.kill('SIGKILL');
    await holder.exited;
    await startWorker(['-A', FLEET, '-c', '2'], slow);
    const second = await client.sendTask<number>('fleet.exclusive', [10]);
    expect(await second.get({ timeout: 60_000 })).toBe(10);
    const secondStart = readEffects(effects).find((e) => e.kind === 'start' && e.id === second.id)!;
    expect(secondStart.t - started.t, JSON.stringify(readEffects(effects))).toBeGreaterThanOrEqual(30_000 - 50);
  }, 90_000);
});

describe('changing and refusing fleet-wide limits', () => {
  it('celeriac control rate_limit changes the fleet-wide limit for every worker, through the backend', async () => {
    const { env, client } = world('redis');
    await startWorker(['-A', FLEET, '-c', '4'], env);
    const control = celeriac(['control', 'rate_limit', 'fleet.rated', '1/h', '--json'], env);
    expect(await control.exited).toBe(0);
    expect(control.output()).toContain('new fleet-wide rate limit set successfully');
    // The first run takes the slot now; the second is booked an hour later: it waits broker-side (delayed).
    expect(await (await client.sendTask<number>('fleet.rated', [1])).get({ timeout: 10_000 })).toBe(1);
    const second = await client.sendTask<number>('fleet.rated', [2]);
    const transport = await client.transport();
    await waitFor(async () => (await transport.delayedCount()) === 1, 'the second run delayed by the new limit');
    // Lifting it (0) frees the next one at once.
    const lift = celeriac(['control', 'rate_limit', 'fleet.rated', '0'], env);
    expect(await lift.exited).toBe(0);
    expect(await (await client.sendTask<number>('fleet.rated', [3])).get({ timeout: 10_000 })).toBe(3);
    expect(await second.state()).toBe('PENDING');
  });

  it('a worker with fleet-limited tasks refuses to start on RabbitMQ with rpc:// results (CAPABILITY_MISSING)', async () => {
    const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `fleet-rpc-${process.pid}`);
    const w = celeriac(['worker', '-A', FLEET], { CELERIAC_BROKER_URL: url });
    expect(await w.exited).not.toBe(0);
    expect(w.output()).toContain('CAPABILITY_MISSING');
    expect(w.output()).toContain('fleet.rated');
    expect(w.output()).toContain('use a Redis or SQLite result backend');
  });
});
