/**
 * Issue #19 item 3, catalogue T13: a half-open partition between workers and RabbitMQ through the
 * fault proxy (blackhole: bytes dropped, no RST), then a reset, then a 2 s delay. The heartbeat
 * (5 s) detects the blackhole within 2 × heartbeat, the connection is replaced, the deliveries
 * held unacked come back (once), nothing is lost — judged by the history checker. An `rpc://`
 * client cut off by the same partition never hangs: its `get()` resolves or fails by name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type CeleriacApp, type CeleriacError } from '@celeriac/core';
import { waitFor } from '../helpers/wait.js';
import { AmqpWorld, expectAmqpAL1, size } from '../harness/amqp-world.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { readRuns, unfinishedRuns } from '../harness/history.js';
import { startRabbit, type RabbitServer } from '../servers/rabbitmq.js';

let rabbit: RabbitServer;
let proxy: FaultProxy;
beforeAll(async () => {
  rabbit = await startRabbit();
  proxy = await startFaultProxy({ port: rabbit.port });
}, 120_000);
afterAll(async () => {
  await proxy?.close();
  await rabbit?.stop();
});

const HEARTBEAT_S = 5;
const through = (url: string): string => url.replace(`:${rabbit.port}/`, `:${proxy.port}/`);
const lostLines = (out: string): number => out.split('\n').filter((l) => /AMQP connection to .* lost/.test(l)).length;

describe('T13: half-open partition through the fault proxy', () => {
  it('blackhole, reset, delay: detected by the heartbeat, connections replaced, held deliveries back once, nothing lost; an rpc:// get never hangs', async () => {
    const world = await AmqpWorld.start(rabbit, { query: `heartbeat=${HEARTBEAT_S}&publishTimeout=3000`, workerUrl: through });
    const workers = [await world.startWorker(['-c', '4', '-n', 'p1@%h']), await world.startWorker(['-c', '4', '-n', 'p2@%h'])];
    // An rpc:// pair beside it: a worker on the direct path, a client behind the proxy.
    await world.startWorker(['-c', '2', '-Q', 'rpcq', '-n', 'rpc@%h'], { CELERIAC_BROKER_URL: world.url, CELERIAC_RESULT_BACKEND: 'rpc://' });
    const rpcClient: CeleriacApp = createApp({ broker: through(world.url), backend: 'rpc://' });
    try {
      const rpcSend = async (id: string, ms: number) => {
        const r = await rpcClient.sendTask<number>('hist.work', [ms], {}, { taskId: id, queue: 'rpcq' });
        world.producer.confirmed(id);
        return r;
      };
      expect(typeof (await (await rpcSend('rpc-warm', 0)).get({ timeout: 20_000 }))).toBe('number');

      const tasks = size(160, 3000);
      const producing = world.produce(tasks, () => 1000, { inFlight: 4, prefix: 't13' });
      await waitFor(() => world.finished() >= 16, 'work under way before the partition', 60_000, 100);
      const acceptedBefore = proxy.accepted();
      const lostBefore = workers.map((w) => lostLines(w.output()));

      const partitionMs = size(20_000, 45_000);
      const blackhole = world.faults.begin('blackhole', `${partitionMs} ms`);
      const rpcDuring = await rpcSend('rpc-during', 2000);
      proxy.set({ kind: 'blackhole' });
      const inFlightAtFault = unfinishedRuns(readRuns(world.runsFile)).length;
      // The get() of a client behind the partition: settles by its timeout whatever happens.
      const rpcOutcome = rpcDuring.get({ timeout: partitionMs + 15_000 }).then(
        (v) => ({ ok: true as const, v }),
        (err: unknown) => ({ ok: false as const, code: (err as CeleriacError).code }),
      );
      // Detected by the heartbeat: each worker logs the missed heartbeat within 2 × heartbeat (+ a tick).
      await waitFor(
        () => workers.every((w, i) => lostLines(w.output()) > lostBefore[i]! && /HEARTBEAT_MISSED/.test(w.output())),
        'both workers noticing the blackhole by heartbeat',
        2 * HEARTBEAT_S * 1000 + 2500, // the watchdog samples every heartbeat / 4
        100,
      );
      // The partition lasts as long as a real one: this wait is the fault, not a synchronisation.
      await new Promise((r) => setTimeout(r, partitionMs));
      proxy.set({ kind: 'pass' });
      await waitFor(async () => (await world.consumers()) === 2, 'both workers consuming again after the heal', 30_000, 250);
      world.faults.end(blackhole);
      expect(proxy.accepted()).toBeGreaterThan(acceptedBefore);

      const rpc = await rpcOutcome;
      if (!rpc.ok) expect(rpc.code).toBe('TIMEOUT');
      // After the heal, the rpc:// client's reply listener is back: a new task's result arrives.
      expect(typeof (await (await rpcSend('rpc-after', 0)).get({ timeout: 30_000 }))).toBe('number');

      // A reset: every socket destroyed at once; both reconnect.
      const reset = world.faults.begin('reset');
      proxy.set({ kind: 'reset' });
      await waitFor(async () => (await world.consumers()) === 2, 'both workers consuming again after the reset', 30_000, 250);
      world.faults.end(reset);

      // A 2 s delay each way is slower than the heartbeat needs but not a failure: no disconnect, no duplicate.
      const lostBeforeDelay = workers.map((w) => lostLines(w.output()));
      const delayFrom = Date.now();
      proxy.set({ kind: 'delay', ms: 2000 });
      await new Promise((r) => setTimeout(r, size(12_000, 30_000)));
      proxy.set({ kind: 'pass' });
      const delayTo = Date.now();
      expect(workers.map((w) => lostLines(w.output()))).toEqual(lostBeforeDelay);

      await producing;
      const report = await expectAmqpAL1(world);
      console.log(`[T13] in flight at the blackhole: ${inFlightAtFault}; rpc get during the partition: ${JSON.stringify(rpc)}`);
      expect(report.counts.duplicated).toBeLessThanOrEqual(inFlightAtFault + 8);
      const runs = readRuns(world.runsFile).filter((r) => r.end !== undefined);
      const startedInDelay = new Set(runs.filter((r) => r.start >= delayFrom && r.end! <= delayTo).map((r) => r.id));
      const twice = [...startedInDelay].filter((id) => runs.filter((r) => r.id === id).length > 1);
      expect(twice).toEqual([]);
      for (const w of workers) expect(w.output()).not.toMatch(/Unhandled|uncaught/i);
    } finally {
      await rpcClient.close();
    }
  }, 240_000);
});
