import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { waitFor } from './wait.js';

/** Debian's Python (a pyenv `python3` may come first on PATH) with python3-celery. */
export const PYTHON = '/usr/bin/python3';
export const PY_DIR = join(import.meta.dirname, '..', 'interop', 'py');

const running = new Set<ReturnType<typeof spawn>>();
afterEach(async () => {
  for (const p of [...running]) {
    p.kill('SIGKILL');
    await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
    running.delete(p);
  }
});

/** Start a Python Celery worker (solo pool) on the given broker/backend and wait until it is ready. */
export async function startPythonWorker(env: Record<string, string>, queues = 'celery'): Promise<{ output: () => string; kill: () => void }> {
  const proc = spawn(PYTHON, ['-m', 'celery', '-A', 'tasks', 'worker', '-P', 'solo', '-Q', queues, '--without-gossip', '--without-mingle', '--without-heartbeat', '-l', 'info'], {
    cwd: PY_DIR,
    env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor(() => /celery@\S+ ready\./.test(out) || proc.exitCode !== null, 'python worker ready', 30_000, 50);
  if (proc.exitCode !== null) throw new Error(`python worker exited:\n${out}`);
  return { output: () => out, kill: () => proc.kill('SIGKILL') };
}

export interface PyCallResult {
  id: string;
  value?: unknown;
  error?: { type: string; message: string };
  state: string;
  ready: boolean;
}

/** Run calls through a Python Celery client (`send_task` + `get`). */
export function pythonClient(env: Record<string, string>, calls: Record<string, unknown>[]): PyCallResult[] {
  const r = spawnSync(PYTHON, ['client.py'], {
    cwd: PY_DIR,
    env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' },
    input: JSON.stringify(calls),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`python client failed (${r.status}):\n${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as PyCallResult);
}
