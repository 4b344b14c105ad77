/**
 * Issue #19 item 6 (catalogue T22), RabbitMQ part: a chaos soak. A steady producer runs while, at
 * random bounded intervals, one fault is injected: kill -9 of a worker (restarted), SIGSTOP/SIGCONT
 * of a worker, `stop_app`/`start_app` of the broker, a proxy blackhole or a proxy reset. At the end
 * the history checker's counts are printed and asserted (lost = 0), and each worker's RSS and open
 * file descriptors are sampled and reported. 60 s in `pnpm test`; `pnpm soak --minutes N` for longer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spawned } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { AmqpWorld, expectAmqpAL1 } from '../harness/amqp-world.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRabbit, type RabbitServer } from '../servers/rabbitmq.js';

const MINUTES = Number(process.env.CELERIAC_SOAK_MINUTES ?? 1);
const DURATION_MS = MINUTES * 60_000;

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

/** RSS (kB) and open file descriptors of a live process (undefined once it is gone). */
function sample(pid: number): { rssKb: number; fds: number } | undefined {
  try {
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return { rssKb: Number(rss ?? 0), fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

describe('T22 chaos soak on RabbitMQ', () => {
  it(`${MINUTES} min of random faults under a steady producer: lost 0, unexpected 0, every duplicate attributed; worker RSS and FDs reported`, async () => {
    const world = await AmqpWorld.start(rabbit, { workerUrl: (url) => url.replace(`:${rabbit.port}/`, `:${proxy.port}/`) });
    const workers: Spawned[] = [await world.startWorker(['-c', '4', '-n', 's1@%h']), await world.startWorker(['-c', '4', '-n', 's2@%h'])];
    const samples = new Map<number, { at: number; rssKb: number; fds: number }[]>();
    const end = Date.now() + DURATION_MS;

    // The steady producer (paced: a rate, not a synchronisation), ~50 tasks/s.
    let sent = 0;
    const producing = (async () => {
      while (Date.now() < end) {
        sent += (await world.produce(5, (i) => 20 + (i % 5) * 20, { inFlight: 5, prefix: `soak${sent}` })).length;
        await pause(100);
      }
    })();
    const sampling = (async () => {
      while (Date.now() < end) {
        for (const w of workers) {
          const s = sample(w.pid);
          if (s) samples.set(w.pid, [...(samples.get(w.pid) ?? []), { at: Date.now(), ...s }]);
        }
        await pause(2000);
      }
    })();

    const faults: Record<string, () => Promise<void>> = {
      'kill -9 of a worker': async () => {
        const i = between(0, 2);
        workers[i]!.proc.kill('SIGKILL');
        await workers[i]!.exited;
        workers[i] = await world.startWorker(['-c', '4', '-n', `s${i + 1}@%h`]);
      },
      'SIGSTOP/SIGCONT of a worker': async () => {
        const w = workers[between(0, 2)]!;
        w.proc.kill('SIGSTOP');
        await pause(between(3000, 8000));
        w.proc.kill('SIGCONT');
      },
      'broker stop_app/start_app': async () => {
        await rabbit.ctl('stop_app');
        await pause(between(2000, 8000));
        await rabbit.ctl('start_app');
      },
      'proxy blackhole': async () => {
        proxy.set({ kind: 'blackhole' });
        await pause(between(5000, 12_000));
        proxy.set({ kind: 'pass' });
      },
      'proxy reset': async () => void proxy.set({ kind: 'reset' }),
    };
    const injected: string[] = [];
    while (Date.now() < end - 10_000) {
      await pause(between(3000, 8000));
      const kind = Object.keys(faults)[between(0, Object.keys(faults).length)]!;
      injected.push(kind);
      await world.faults.during(kind, async () => {
        await faults[kind]!();
        await waitFor(async () => (await world.consumers()) === 2, `both workers consuming after ${kind}`, 60_000, 250);
      });
    }
    await producing;
    await sampling;
    const report = await expectAmqpAL1(world);
    console.log(`[T22 soak, ${MINUTES} min] faults: ${injected.join(', ')}`);
    for (const [pid, list] of samples) {
      const first = list[0]!;
      const last = list[list.length - 1]!;
      console.log(`[T22 soak] worker ${pid}: ${list.length} samples over ${Math.round((last.at - first.at) / 1000)} s; RSS ${first.rssKb} → ${last.rssKb} kB; FDs ${first.fds} → ${last.fds}`);
      // Open descriptors stay flat (±20) over a worker's life: nothing leaks per reconnect.
      expect(Math.abs(last.fds - first.fds)).toBeLessThanOrEqual(20);
    }
    expect(injected.length).toBeGreaterThan(0);
    expect(report.counts.lost).toBe(0);
  }, DURATION_MS + 420_000);
});
