import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { waitFor } from './wait.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'packages', 'worker', 'bin', 'celeriac.js');
export const FIXTURE_APP = join(ROOT, 'test', 'fixtures', 'apps', 'tasks.ts');
export const HARD_LIMIT_APP = join(ROOT, 'test', 'fixtures', 'apps', 'hard-limits.ts');

export interface Spawned {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Wait until the output matches. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
}

const running = new Set<Spawned>();

/** Run the `celeriac` CLI as a real process; killed after the test if still alive. */
export function celeriac(args: string[], env: Record<string, string> = {}): Spawned {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const spawned: Spawned = {
    proc,
    pid: proc.pid!,
    output: () => out,
    waitForOutput: (pattern, timeoutMs = 20_000) => waitFor(() => pattern.test(out), `output ${pattern}\n--- output so far ---\n${out}`, timeoutMs).then(() => undefined),
    exited,
  };
  running.add(spawned);
  spawnedInTest.add(spawned);
  void exited.then(() => running.delete(spawned));
  return spawned;
}

/** Run a `celeriac` command to its end: its exit code and everything it printed. */
export async function runCeleriac(args: string[], env: Record<string, string> = {}): Promise<{ code: number | string; out: string }> {
  const p = celeriac(args, env);
  const code = await p.exited;
  return { code, out: p.output() };
}

/** Start `celeriac worker` and wait until it reports ready. */
export async function startWorker(args: string[], env: Record<string, string>): Promise<Spawned> {
  const w = celeriac(['worker', ...args], env);
  await Promise.race([
    w.waitForOutput(/worker ready/, 30_000),
    w.exited.then((code) => {
      throw new Error(`worker exited (${code}) before ready:\n${w.output()}`);
    }),
  ]);
  return w;
}

/** Pids of a process's children (a process-pool worker's children outlive a SIGKILL of their parent). */
function childrenOf(pid: number): number[] {
  return spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
}

/** What a process prints for a promise left unobserved or an exception nothing caught (ours, and Node's own). */
const UNHANDLED = /celeriac: (unhandled rejection|uncaught exception)|UnhandledPromiseRejection|Uncaught (Exception|Error)|triggerUncaughtException/;

/** Every process spawned in this file so far, alive or not: their logs are checked after each test. */
const spawnedInTest = new Set<Spawned>();

/**
 * A spawned worker (or any CLI process) whose log shows an unhandled rejection or an uncaught
 * exception fails the test that ran it, even when the test's own assertions passed.
 */
afterEach(() => {
  const bad = [...spawnedInTest].filter((s) => UNHANDLED.test(s.output()));
  spawnedInTest.clear();
  if (bad.length) throw new Error(`unhandled error in a spawned process:\n${bad.map((s) => s.output().split('\n').filter((l) => UNHANDLED.test(l)).join('\n')).join('\n---\n')}`);
});

afterEach(async () => {
  for (const s of [...running]) {
    // Children first: a child busy in a CPU loop never sees its parent go, and would spin through later tests.
    for (const child of childrenOf(s.pid)) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    s.proc.kill('SIGKILL');
    await s.exited;
  }
});
