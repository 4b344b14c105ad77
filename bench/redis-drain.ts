/**
 * `pnpm bench redis-drain`: where a c=100 drain's time goes, for work on the Redis path.
 * Enqueues BENCH_N no-ops (default 60,000) to a staging list, starts `celeriac worker`,
 * renames the list to `celery` and times the drain; prints tasks/s, the worker's and
 * Redis's CPU per task (from /proc and INFO cpu), Redis's time per task by command (evalsha
 * holds the scripts, the commands they call are also listed), and the worker's RSS. BENCH_RUNS runs (default 3), BENCH_C concurrency (default 100);
 * BENCH_NODE_ARGS go to the worker's node (e.g. `--cpu-prof`).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createApp } from '@celeriac/core';
import { startRedis } from '../test/servers/redis.js';
import { CLI, ROOT, stop, treeRssMb, waitUntil } from './util.js';

const N = Number(process.env.BENCH_N ?? 60_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const C = process.env.BENCH_C ?? '100';
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** CPU seconds a process has used (user + system). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const redisCpu = (info: string): number => Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);

/** `pnpm bench redis-drain`. */
export async function benchRedisDrain(): Promise<void> {
  const server = await startRedis(['--appendfsync', 'everysec']);
  const raw = new Redis(server.url);
  const app = createApp({ broker: server.url });
  try {
    for (let run = 0; run < RUNS; run++) {
      await raw.flushdb();
      for (let i = 0; i < N; i += 1000) {
        await Promise.all(Array.from({ length: Math.min(1000, N - i) }, () => app.sendTask('bench.noop', [], {}, { queue: 'staging' })));
      }
      const worker = spawn(process.execPath, [...NODE_ARGS, CLI, 'worker', '-A', join(ROOT, 'bench', 'celeriac-tasks.ts'), '-c', C, '--loglevel', 'warn'], {
        env: { ...process.env, CELERIAC_BROKER_URL: server.url },
        stdio: 'inherit',
      });
      await (await app.sendTask('bench.echo', [0])).get({ timeout: 60_000 });
      await raw.config('RESETSTAT');
      const [redis0, worker0, t0] = [redisCpu(await raw.info('cpu')), cpuSeconds(worker.pid!), performance.now()];
      await raw.rename('staging', 'celery');
      await waitUntil(async () => (await raw.llen('celery')) === 0 && (await raw.hlen('unacked')) === 0, 'drain');
      const seconds = (performance.now() - t0) / 1000;
      const [redis1, worker1] = [redisCpu(await raw.info('cpu')), cpuSeconds(worker.pid!)];
      const calls = (await raw.info('commandstats'))
        .split('\n')
        .map((l) => /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(l))
        .filter((m): m is RegExpExecArray => !!m && Number(m[3]) / N >= 0.1)
        .map((m) => `${m[1]} ${(Number(m[3]) / N).toFixed(1)}`);
      const us = (s: number) => ((s / N) * 1e6).toFixed(1);
      console.log(
        `run ${run}: ${Math.round(N / seconds)} tasks/s; CPU per task: worker ${us(worker1 - worker0)} µs, Redis ${us(redis1 - redis0)} µs ` +
          `(µs per task by command: ${calls.join(', ')}); worker RSS ${treeRssMb(worker.pid!).toFixed(0)} MB`,
      );
      await stop(worker);
    }
  } finally {
    await app.close();
    raw.disconnect();
    await server.stop();
  }
}
