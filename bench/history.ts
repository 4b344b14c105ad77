/**
 * `pnpm bench history`: the dashboard's task history at size. Fills BENCH_HISTORY_N tasks
 * (default 100,000; four events each, as a worker sends them) into the SQLite store and into the
 * Redis store on a private redis-server, then times the list queries the task page makes — a page
 * of 50 — as the median of several runs, against the 100 ms the page needs to feel interactive.
 * BENCH_HISTORY_STORES=sqlite or =redis runs one store only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CeleryEvent } from '@celeriac/core/spi';
import { startRedis } from '../test/servers/redis.js';
import type { HistoryStore, TaskQuery } from '../packages/worker/src/dashboard/model.js';

type OpenModule = typeof import('../packages/worker/src/dashboard/history/open.js');
const { openHistory } = (await import(join(import.meta.dirname, '../packages/worker/dist/dashboard/history/open.js'))) as OpenModule;

const N = Number(process.env.BENCH_HISTORY_N ?? 100_000);
const RUNS = 7;
const TARGET_MS = 100;
const BATCH = 2000;
const NAMES = Array.from({ length: 20 }, (_, i) => `app.tasks.job_${i}`);
const WORKERS = Array.from({ length: 8 }, (_, i) => `celeriac@node-${i}`);
const QUEUES = ['default', 'emails', 'reports', 'urgent'];
/** One clock for the fill and the queries, so both stores hold the same times and match the same tasks. */
const NOW = Date.now();

/** Task i's events over the last 24 hours: 85 % succeed, 10 % fail, 5 % are still running; 1 in 500 mentions "needle". */
function events(i: number, now: number): CeleryEvent[] {
  const t = now - 86_400_000 + Math.floor((i / N) * 86_400_000);
  const id = `${(i * 2654435761 >>> 0).toString(16).padStart(8, '0')}-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const worker = WORKERS[i % WORKERS.length]!;
  const name = NAMES[(i * 7) % NAMES.length]!;
  const base = { hostname: worker, clock: i, pid: 1, utcoffset: 0 };
  const at = (ms: number) => (t + ms) / 1000;
  const kwargs = i % 500 === 0 ? `{'user': 'needle-${i}', 'n': ${i}}` : `{'user': 'user-${i % 977}', 'n': ${i}}`;
  const out: CeleryEvent[] = [
    { ...base, hostname: 'client@web', type: 'task-sent', uuid: id, name, args: `(${i}, 'x')`, kwargs, queue: QUEUES[i % QUEUES.length], retries: 0, timestamp: at(0) },
    { ...base, type: 'task-received', uuid: id, name, args: `(${i}, 'x')`, kwargs, queue: QUEUES[i % QUEUES.length], retries: 0, timestamp: at(5) },
    { ...base, type: 'task-started', uuid: id, timestamp: at(10) },
  ];
  const roll = i % 20;
  if (roll < 2) out.push({ ...base, type: 'task-failed', uuid: id, exception: `ValueError('bad input ${i}')`, traceback: 'Traceback (most recent call last):\n  ...\nValueError', timestamp: at(10 + (i % 300)) });
  else if (roll < 19) out.push({ ...base, type: 'task-succeeded', uuid: id, result: `{'rows': ${i % 1000}}`, runtime: (i % 300) / 1000, timestamp: at(10 + (i % 300)) });
  return out;
}

async function fill(store: HistoryStore): Promise<number> {
  const now = NOW;
  const started = performance.now();
  for (let i = 0; i < N; i += BATCH / 4) {
    const batch: CeleryEvent[] = [];
    for (let k = i; k < Math.min(N, i + BATCH / 4); k++) batch.push(...events(k, now));
    await store.ingest(batch);
  }
  return (performance.now() - started) / 1000;
}

const page = (over: Partial<TaskQuery>): TaskQuery => ({ sort: 'updatedAt', order: 'desc', offset: 0, limit: 50, ...over });
/** The queries timed; the first seven are the ones the 100 ms target is for. */
const QUERIES: [string, TaskQuery][] = [
  ['unfiltered', page({})],
  ['by state (FAILURE)', page({ states: ['FAILURE'] })],
  ['by name', page({ name: NAMES[3]! })],
  ['by worker', page({ worker: WORKERS[5]! })],
  ['text search (1 in 500 match)', page({ text: 'NEEDLE' })],
  ['text search, no match', page({ text: 'no-such-text' })],
  ['deep page (offset 50,000)', page({ offset: 50_000 })],
  ['2 states (SUCCESS,FAILURE)', page({ states: ['SUCCESS', 'FAILURE'] })],
  ['name prefix (11 names)', page({ name: 'app.tasks.job_1*' })],
  ['name prefix + 2 states', page({ name: 'app.tasks.job_1*', states: ['SUCCESS', 'FAILURE'] })],
  ['by worker, sorted by runtime', page({ worker: WORKERS[2]!, sort: 'runtime' })],
  ['sorted by name', page({ sort: 'name', order: 'asc' })],
  ['last hour (from)', page({ from: NOW - 3_600_000 })],
];

async function median(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
}

async function measure(store: HistoryStore): Promise<Map<string, { ms: number; total: number }>> {
  const out = new Map<string, { ms: number; total: number }>();
  for (const [label, query] of QUERIES) {
    const { total } = await store.list(query);
    out.set(label, { ms: await median(() => store.list(query)), total });
  }
  out.set('detail (get)', { ms: await median(async () => store.get((await store.list(page({ limit: 1 }))).tasks[0]!.id)), total: 1 });
  out.set('state counts', { ms: await median(() => store.stateCounts()), total: 0 });
  out.set('throughput, last hour by minute', { ms: await median(() => store.throughput(Date.now() - 3_600_000, 60_000)), total: 0 });
  return out;
}

export async function benchHistory(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-bench-history-'));
  // The history is not a queue: fsync once a second, as a history on Redis would be set up.
  const redis = await startRedis(['--appendfsync', 'everysec']);
  const results: Record<string, Map<string, { ms: number; total: number }>> = {};
  try {
    const stores = [
      ['sqlite', join(dir, 'celeriac-dashboard.db')],
      ['redis', redis.url],
    ] as const;
    for (const [kind, url] of stores.filter(([k]) => (process.env.BENCH_HISTORY_STORES ?? 'sqlite,redis').split(',').includes(k))) {
      const store = await openHistory(url, dir);
      try {
        const seconds = await fill(store);
        console.log(`${kind}: filled ${N.toLocaleString('en')} tasks (${(N * 3.95).toLocaleString('en', { maximumFractionDigits: 0 })} events) in ${seconds.toFixed(1)} s (${Math.round((N * 3.95) / seconds).toLocaleString('en')} events/s)`);
        results[kind] = await measure(store);
      } finally {
        await store.close();
      }
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const cell = (m: { ms: number } | undefined, targeted: boolean) => (m ? `${m.ms.toFixed(1).padStart(7)} ms ${targeted ? (m.ms <= TARGET_MS ? '✓' : '✗') : ' '}` : '—'.padStart(12));
  console.log(`\nHistory list queries, ${N.toLocaleString('en')} tasks, page of 50, median of ${RUNS} (✓/✗: the ${TARGET_MS} ms target)\n`);
  console.log(`${'query'.padEnd(34)} ${'matches'.padStart(8)}  ${'SQLite'.padStart(12)}  ${'Redis'.padStart(12)}`);
  const labels = [...(results.sqlite ?? results.redis)!.keys()];
  labels.forEach((label, i) => {
    const s = results.sqlite?.get(label);
    const r = results.redis?.get(label);
    const m = s ?? r;
    const total = m && m.total > 1 ? m.total.toLocaleString('en') : '';
    const redisTotal = r && s && r.total !== s.total ? ` (redis ${r.total.toLocaleString('en')})` : '';
    console.log(`${label.padEnd(34)} ${total.padStart(8)}  ${cell(s, i < 7)}  ${cell(r, i < 7)}${redisTotal}`);
  });
}
