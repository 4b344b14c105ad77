/**
 * `pnpm bench redis`: the same workload through celeriac, BullMQ and Python Celery
 * 5.2.6 on one private redis-server, in one run, printed as one table.
 * BENCH_N sets the task count (default 10,000). Numbers move 20–40 % between runs
 * on a 2-core machine: compare the systems within a run, as ratios.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { createApp } from '@celeriac/core';
import { startRedis } from '../test/servers/redis.js';

import { CLI, N, PY, ROOT, RT, celeryClient, pct, printTable, recordDrain, roundTrips, spawnUntil, stop, treeRssMb, waitUntil, type Row } from './util.js';


/** kombu-layout systems (celeriac, Celery): drained when the queue list and the unacked hash are empty. */
const kombuDrained = (raw: Redis) => async () => (await raw.llen('celery')) === 0 && (await raw.hlen('unacked')) === 0;

async function benchCeleriac(url: string, raw: Redis): Promise<Row> {
  const app = createApp({ broker: url });
  const row: Row = { system: 'celeriac (async pool)', enqueueOne: 0, enqueueBulk: 0, c1: 0, c100: 0, p50: 0, p99: 0, rssMb: 0 };
  const ONE = Math.min(N, 5000);
  let t = performance.now();
  for (let i = 0; i < ONE; i++) await app.sendTask('bench.noop', [], {}, { queue: 'staging' });
  row.enqueueOne = ONE / ((performance.now() - t) / 1000);
  await raw.flushdb();
  t = performance.now();
  for (let i = 0; i < N; i += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, N - i) }, () => app.sendTask('bench.noop', [], {}, { queue: 'staging' })));
  }
  row.enqueueBulk = N / ((performance.now() - t) / 1000);
  for (const c of [1, 100] as const) {
    await raw.flushdb();
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, N - i) }, () => app.sendTask('bench.noop', [], {}, { queue: 'staging' })));
    }
    // Logs at warn, like the other systems here; readiness is a round trip through the worker.
    const worker = spawn(process.execPath, [CLI, 'worker', '-A', join(ROOT, 'bench', 'celeriac-tasks.ts'), '-c', String(c), '--loglevel', 'warn'], {
      env: { ...process.env, CELERIAC_BROKER_URL: url },
      stdio: 'inherit',
    });
    await (await app.sendTask('bench.echo', [0])).get({ timeout: 60_000 });
    t = performance.now();
    await raw.rename('staging', 'celery');
    await waitUntil(kombuDrained(raw), 'celeriac drain');
    const rate = N / ((performance.now() - t) / 1000);
    if (c === 1) row.c1 = rate;
    else {
      row.c100 = rate;
      row.rssMb = treeRssMb(worker.pid!);
    }
    if (c === 1) Object.assign(row, await roundTrips(async (i) => void (await (await app.sendTask('bench.echo', [i])).get({ timeout: 30_000 }))));
    await stop(worker);
  }
  await app.close();
  return row;
}

async function benchBullmq(url: string, raw: Redis): Promise<Row> {
  const u = new URL(url);
  const connection = { host: u.hostname, port: Number(u.port) };
  const row: Row = { system: 'BullMQ 6.7', enqueueOne: 0, enqueueBulk: 0, c1: 0, c100: 0, p50: 0, p99: 0, rssMb: 0 };
  await raw.flushdb();
  const queue = new Queue('bench', { connection });
  const opts = { removeOnComplete: true, removeOnFail: true };
  const ONE = Math.min(N, 5000);
  let t = performance.now();
  for (let i = 0; i < ONE; i++) await queue.add('noop', {}, opts);
  row.enqueueOne = ONE / ((performance.now() - t) / 1000);
  await queue.obliterate({ force: true });
  t = performance.now();
  for (let i = 0; i < N; i += 1000) await queue.addBulk(Array.from({ length: Math.min(1000, N - i) }, () => ({ name: 'noop', data: {}, opts })));
  row.enqueueBulk = N / ((performance.now() - t) / 1000);
  const events = new QueueEvents('bench', { connection });
  await events.waitUntilReady();
  for (const c of [1, 100] as const) {
    await queue.obliterate({ force: true });
    await queue.pause();
    for (let i = 0; i < N; i += 1000) await queue.addBulk(Array.from({ length: Math.min(1000, N - i) }, () => ({ name: 'noop', data: {}, opts })));
    const worker = await spawnUntil(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'bullmq-worker.ts'), url, String(c)], {}, /bullmq worker ready/);
    t = performance.now();
    await queue.resume();
    await waitUntil(async () => {
      const counts = await queue.getJobCounts('wait', 'active', 'prioritized');
      return Object.values(counts).every((n) => n === 0);
    }, 'BullMQ drain');
    const rate = N / ((performance.now() - t) / 1000);
    if (c === 1) row.c1 = rate;
    else {
      row.c100 = rate;
      row.rssMb = treeRssMb(worker.pid!);
    }
    if (c === 1) Object.assign(row, await roundTrips(async (i) => void (await (await queue.add('echo', { x: i })).waitUntilFinished(events, 30_000))));
    await stop(worker);
  }
  await events.close();
  await queue.close();
  return row;
}

async function benchCelery(url: string, raw: Redis): Promise<Row> {
  const env = { CELERY_BROKER_URL: url, PYTHONDONTWRITEBYTECODE: '1' };
  const py = celeryClient(env);
  const row: Row = { system: 'Celery 5.2.6 (solo / threads)', enqueueOne: 0, enqueueBulk: null, c1: 0, c100: 0, p50: 0, p99: 0, rssMb: 0 };
  const ONE = Math.min(N, 5000);
  await raw.flushdb();
  row.enqueueOne = ONE / py(['enqueue', String(ONE), 'staging']).seconds!;
  for (const c of [1, 100] as const) {
    await raw.flushdb();
    py(['enqueue', String(N), 'staging']);
    const pool = c === 1 ? ['-P', 'solo'] : ['-P', 'threads', '-c', '100'];
    const worker = await spawnUntil(PY, ['-m', 'celery', '-A', 'celery_bench', 'worker', ...pool, '--without-gossip', '--without-mingle', '--without-heartbeat', '-l', 'warning'], env, /ready\.|\[tasks\]|celery@/, join(ROOT, 'bench'));
    // The banner prints before the consumer starts: wait for a round trip through it.
    const probe = createApp({ broker: url });
    await (await probe.sendTask('bench.echo', [0])).get({ timeout: 60_000 });
    await probe.close();
    const t = performance.now();
    await raw.rename('staging', 'celery');
    await waitUntil(kombuDrained(raw), 'Celery drain');
    const rate = N / ((performance.now() - t) / 1000);
    await recordDrain(row, c, rate, worker, async () => {
      const lat = py(['roundtrip', String(RT)]).latencies!;
      return { p50: pct(lat, 50), p99: pct(lat, 99) };
    });
    await stop(worker);
  }
  return row;
}

function print(rows: Row[]): void {
  printTable(`Redis benchmark — ${N.toLocaleString('en-US')} no-op tasks, results ignored; round trip = delay→get at idle (${RT} calls)`, rows);
  const [ours, bull, celery] = rows;
  if (ours && bull && celery) {
    console.log(
      `\nceleriac vs BullMQ: c=100 ×${(ours.c100 / bull.c100).toFixed(2)} (target ≥ 2), p50 ×${(ours.p50 / bull.p50).toFixed(2)}, p99 ×${(ours.p99 / bull.p99).toFixed(2)} (targets ≤ 1), RSS ×${((ours.rssMb ?? 0) / (bull.rssMb ?? 1)).toFixed(2)} (target ≤ 1)`,
    );
    console.log(`celeriac vs Celery: c=100 ×${(ours.c100 / celery.c100).toFixed(1)} (target ≥ 10)`);
  }
}

/** `pnpm bench redis`. */
export async function benchRedis(): Promise<void> {
  const server = await startRedis(['--appendfsync', 'everysec']);
  const raw = new Redis(server.url);
  try {
    const rows = [await benchCeleriac(server.url, raw), await benchBullmq(server.url, raw), await benchCelery(server.url, raw)];
    print(rows);
  } finally {
    raw.disconnect();
    await server.stop();
  }
}
