/** Helpers shared by the Redis and AMQP benchmarks. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const N = Number(process.env.BENCH_N ?? 10_000);
export const RT = Number(process.env.BENCH_RT ?? 500);
export const ROOT = join(import.meta.dirname, '..');
export const CLI = join(ROOT, 'packages', 'worker', 'bin', 'celeriac.js');
export const PY = '/usr/bin/python3';

export interface Row {
  system: string;
  enqueueOne: number;
  enqueueBulk: number | null;
  c1: number;
  c100: number;
  p50: number;
  p99: number;
  rssMb: number | null;
}

export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** p50 / p99 of `RT` sequential calls of `call` (send, then wait for the result). */
export async function roundTrips(call: (i: number) => Promise<void>): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < RT; i++) {
    const start = performance.now();
    await call(i);
    lat.push(performance.now() - start);
  }
  return { p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** RSS of a process and its children, in MB (Celery's prefork and threads, celeriac's process pool). */
export function treeRssMb(pid: number): number {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  let kb = 0;
  try {
    kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    kb = 0;
  }
  return kb / 1024 + kids.reduce((sum, k) => sum + treeRssMb(k), 0);
}

export function spawnUntil(cmd: string, args: string[], env: Record<string, string>, ready: RegExp, cwd = ROOT): Promise<ChildProcess> {
  const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (ready.test(out)) resolve(proc);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before ready:\n${out.slice(-2000)}`)));
  });
}

export async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

export async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}


/** Run the Python Celery bench client (`celery_bench.py enqueue|roundtrip ...`) and read its JSON answer. */
export function celeryClient(env: Record<string, string>): (args: string[]) => { seconds?: number; latencies?: number[] } {
  return (args) => {
    const r = spawnSync(PY, ['celery_bench.py', ...args], { cwd: join(ROOT, 'bench'), env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`celery client failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { seconds?: number; latencies?: number[] };
  };
}

/** Fill a row's throughput (and, at c=1, round trip through `roundTrip`; at c=100, the worker's RSS). */
export async function recordDrain(row: Row, c: 1 | 100, rate: number, worker: ChildProcess, roundTrip: () => Promise<{ p50: number; p99: number }>): Promise<void> {
  if (c === 1) {
    row.c1 = rate;
    Object.assign(row, await roundTrip());
  } else {
    row.c100 = rate;
    row.rssMb = treeRssMb(worker.pid!);
  }
}

export function printTable(title: string, rows: Row[]): void {
  const f = (n: number | null, d = 0): string => (n === null ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  console.log(`\n${title}\n`);
  console.log('| system | enqueue one by one /s | enqueue bulk /s | throughput c=1 /s | throughput c=100 /s | round trip p50 / p99 ms | worker RSS MB |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.system} | ${f(r.enqueueOne)} | ${f(r.enqueueBulk)} | ${f(r.c1)} | ${f(r.c100)} | ${f(r.p50, 2)} / ${f(r.p99, 2)} | ${f(r.rssMb)} |`);
  }
}
