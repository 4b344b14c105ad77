import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type CeleriacApp } from '@celeriac/core';
import { readEffects } from '../helpers/effects.js';
import { CLI, ROOT, startWorker } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../servers/redis.js';

const POOL_APP = join(ROOT, 'test', 'fixtures', 'apps', 'pool-tasks.ts');
const dir = tempDir('celeriac-orphans-');

/**
 * How long a child may outlive its SIGKILLed worker: 'disconnect' ends the sleeper in
 * milliseconds, the watchdog thread (polling every 250 ms) the spinner; the rest is slack.
 */
const GONE_WITHIN_MS = 3_000;

let redis: RedisServer;
let client: CeleriacApp | undefined;
/** Child pids seen by a test, killed afterwards if the test failed and they are still there. */
const strays: number[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis.stop();
});

afterEach(async () => {
  // processes.ts's afterEach finds children with `pgrep -P <worker>`, which no longer
  // finds them once the worker is dead and they were reparented: clean up here.
  for (const pid of strays.splice(0)) {
    try {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await client?.close();
  client = undefined;
});

/**
 * Whether `pid` still exists as a running process. A zombie (dead, not yet reaped by
 * whoever adopted it) counts as gone: it runs nothing.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; the comm may hold spaces, the state follows its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const childrenOf = (pid: number): number[] =>
  spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);

describe('process pool: children die with their worker', () => {
  it('kill -9 of the worker ends a child sleeping in a task and a child spinning in a CPU loop', async () => {
    const effects = join(dir, 'effects.jsonl');
    const env = { CELERIAC_BROKER_URL: redis.url, CELERIAC_RESULT_BACKEND: redis.url, EFFECTS_FILE: effects, CELERIAC_LOGLEVEL: 'info' };
    client = createApp({ broker: redis.url, backend: redis.url });
    const worker = await startWorker(['-A', POOL_APP, '--pool', 'process', '-c', '2'], env);

    await client.sendTask('pool.sleep', [600_000]);
    await client.sendTask('pool.spin', []);
    const running = await waitFor(() => {
      const starts = readEffects(effects).filter((e) => e.kind === 'start');
      return starts.length >= 2 ? starts : undefined;
    }, 'both tasks running in children', 20_000);
    const pids = running.map((e) => e.pid);
    strays.push(...pids);
    expect(running.map((e) => e.task).sort()).toEqual(['pool.sleep', 'pool.spin']);
    expect(new Set(pids).size).toBe(2);
    // They are the worker's own children (not some process that happens to share a pid).
    expect(childrenOf(worker.pid)).toEqual(expect.arrayContaining(pids));

    process.kill(worker.pid, 'SIGKILL');
    expect(await worker.exited).toBe('SIGKILL');
    // Fails the test if either child is still there at the deadline. Without the fix both
    // stay: the sleeper keeps its timer (and its task), the spinner never yields.
    await waitFor(() => pids.every((pid) => !alive(pid)), `children ${pids.join(', ')} gone after their worker was killed`, GONE_WITHIN_MS, 20);
  });
});

describe('process pool: a signal to the whole process group is the worker\'s to act on', () => {
  it('Ctrl-C (SIGINT to the group) is a warm shutdown: the task a child runs finishes and is stored, and the worker exits 0', async () => {
    const effects = join(dir, 'group-effects.jsonl');
    const env = { ...process.env, CELERIAC_BROKER_URL: redis.url, CELERIAC_RESULT_BACKEND: redis.url, EFFECTS_FILE: effects, CELERIAC_LOGLEVEL: 'info' };
    client = createApp({ broker: redis.url, backend: redis.url });
    // Its own process group, as a terminal or a systemd unit gives it: the signal reaches every child.
    const proc = spawn(process.execPath, [CLI, 'worker', '-A', POOL_APP, '--pool', 'process', '-c', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    try {
      await waitFor(() => /worker ready/.test(out), 'worker ready', 30_000);
      const result = await client.sendTask<number>('pool.sleep', [1500]);
      const [start] = await waitFor(() => {
        const starts = readEffects(effects).filter((e) => e.kind === 'start');
        return starts.length ? starts : undefined;
      }, 'the task running in a child', 20_000);
      strays.push(start!.pid);
      process.kill(-proc.pid!, 'SIGINT');
      // Without the child ignoring it, the child dies at once: "Worker exited prematurely", the
      // message goes back to the queue and nothing is stored.
      await expect(result.get({ timeout: 15_000 })).resolves.toBe(1500);
      expect(await exited).toBe(0);
      expect(out).not.toMatch(/exited prematurely|unhandled rejection|uncaught exception/);
      expect(out).toMatch(/worker stopped/);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid!, 'SIGKILL');
    }
  });
});

describe('process pool: a hard time limit set per call', () => {
  it('is enforced for a task defined without one (the limit the message carries is the one applied)', async () => {
    const env = { CELERIAC_BROKER_URL: redis.url, CELERIAC_RESULT_BACKEND: redis.url, CELERIAC_LOGLEVEL: 'info' };
    client = createApp({ broker: redis.url, backend: redis.url });
    const worker = await startWorker(['-A', POOL_APP, '--pool', 'process', '-c', '1'], env);
    const sleeper = client.declareTask<[number], number>('pool.sleep');
    const err = await sleeper.applyAsync([600_000], { timeLimit: 1000 }).get({ timeout: 20_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ excType: 'TimeLimitExceeded' });
    // The pool replaced the killed child and keeps serving.
    await expect(sleeper.delay(10).get({ timeout: 20_000 })).resolves.toBe(10);
    expect(worker.output()).toMatch(/hard time limit \(1 s\) exceeded/);
  });
});
