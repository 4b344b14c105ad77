/**
 * Smoke runs of the examples under examples/: each starts what its README says to start (workers through the
 * real `celeriac` CLI, on the example's built dist), runs its client, checks what the client printed, and stops
 * everything with a warm shutdown (exit code 0). Servers come from the integration setup; every example gets
 * its own key prefix or queue names.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { ROOT, startWorker, type Spawned } from '../helpers/processes.js';
import { PYTHON } from '../helpers/python.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLES = join(ROOT, 'examples');
const run = `${process.pid}-${Date.now()}`;

interface Ran {
  code: number | string;
  out: string;
}

/** Run one of an example's scripts to its end (bounded), as `node dist/<script>` from the example's directory. */
function runNode(example: string, script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Ran> {
  const proc = spawn(process.execPath, [join('dist', script)], { cwd: join(EXAMPLES, example), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, out });
    }),
  );
}

/** A worker of an example, started from its directory as its README does: `celeriac worker -A dist/tasks.js ...`. */
function exampleWorker(example: string, args: string[], env: Record<string, string>): Promise<Spawned> {
  return startWorker(['-A', join(EXAMPLES, example, 'dist', 'tasks.js'), ...args], env);
}

/** SIGTERM (warm shutdown) and the exit code. */
async function warmStop(...procs: Spawned[]): Promise<(number | string)[]> {
  for (const p of procs) p.proc.kill('SIGTERM');
  return Promise.all(procs.map((p) => p.exited));
}

describe('examples/redis: a retried task and a chord on Redis', () => {
  it('the client prints the receipt after three attempts and the chord’s top words', async () => {
    const env = { CELERIAC_BROKER_URL: `${inject('redisUrl')}?keyPrefix=ex-redis-${run}:` };
    const workers = [await exampleWorker('redis', ['-c', '4', '-n', 'a@localhost'], env), await exampleWorker('redis', ['-c', '4', '-n', 'b@localhost'], env)];
    const client = await runNode('redis', 'client.js', env);
    expect(client.out).toMatch(/sent payments\.charge as task [0-9a-f-]{36}/);
    expect(client.out).toContain('charged order-1001: 4999 cents, after 3 attempts (state SUCCESS)');
    expect(client.out).toContain('top words across 3 documents: the=5, dog=3, fox=2');
    expect(client.code).toBe(0);
    const log = workers.map((w) => w.output()).join('\n');
    expect(log).toContain('gateway timed out charging order-1001 (attempt 1)');
    expect(log).toContain('gateway timed out charging order-1001 (attempt 2)');
    expect(await warmStop(...workers)).toEqual([0, 0]);
  });
});

describe('examples/rabbitmq: routing to two queues and a priority queue on RabbitMQ', () => {
  it('orders and reports go to their own workers, and the urgent report overtakes the waiting ones', async () => {
    const prefix = `ex-${run}-`;
    const env = { CELERIAC_BROKER_URL: inject('amqpUrl'), QUEUE_PREFIX: prefix };
    const orders = await exampleWorker('rabbitmq', ['-n', 'orders@localhost'], env);
    const reports = await exampleWorker('rabbitmq', ['-Q', `${prefix}reports`, '-c', '1', '-n', 'reports@localhost'], env);
    const client = await runNode('rabbitmq', 'client.js', env);
    expect(client.out, client.out).toMatch(/order A-1 \(1 items\) placed by worker pid (\d+)/);
    for (const id of ['A-1', 'A-2', 'A-3']) expect(client.out).toContain(`order ${id} (${id.slice(2)} items) placed by worker pid ${orders.pid}`);
    expect(client.out).toContain('reports ran in this order: month-end, urgent-audit, weekly-1, weekly-2, weekly-3');
    expect(client.out).toContain(`all reports rendered by worker pid ${reports.pid}`);
    expect(client.code).toBe(0);
    expect(await warmStop(orders, reports)).toEqual([0, 0]);
  });
});

describe('examples/python-interop: celeriac and Python Celery 5.2 on one Redis', () => {
  it('a Python client calls celeriac tasks, and a celeriac client calls a Python worker\'s task and chains across both', async () => {
    // Python's result backend has no key prefix (Celery 5.2): this example gets a Redis database of its own, emptied first.
    const url = inject('redisUrl').replace(/\/0$/, '/15');
    const raw = new Redis(url);
    await raw.flushdb();
    raw.disconnect();
    const env = { CELERIAC_BROKER_URL: url, CELERY_BROKER_URL: url, PYTHONDONTWRITEBYTECODE: '1' };
    const dir = join(EXAMPLES, 'python-interop');
    const node = await exampleWorker('python-interop', [], env);
    // The README's command, without the start-up chatter a one-worker setup has no use for.
    const py = spawn(PYTHON, ['-m', 'celery', '-A', 'pyapp', 'worker', '-Q', 'py', '-P', 'solo', '-l', 'info', '--without-gossip', '--without-mingle', '--without-heartbeat'], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let pyOut = '';
    py.stdout.on('data', (b: Buffer) => (pyOut += b.toString()));
    py.stderr.on('data', (b: Buffer) => (pyOut += b.toString()));
    const pyExited = new Promise<number | string>((resolve) => py.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    try {
      await waitFor(() => /celery@\S+ ready\./.test(pyOut) || py.exitCode !== null, 'the Python worker ready', 30_000, 50);
      expect(py.exitCode, pyOut).toBeNull();

      const pyClient = spawnSync(PYTHON, ['client.py'], { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
      expect(pyClient.status, pyClient.stderr).toBe(0);
      expect(pyClient.stdout).toContain("node.slugify('Hello from Python Celery!') -> 'hello-from-python-celery'");
      expect(pyClient.stdout).toContain("node.slugify(title=..., separator='_') -> 'keyword_arguments_too' (state SUCCESS)");
      expect(pyClient.stdout).toContain("node.stats([3, 1, 4, 1, 5, 9, 2, 6]) -> {'count': 8, 'min': 1, 'max': 9, 'mean': 3.875}");

      const client = await runNode('python-interop', 'client.js', env);
      expect(client.out).toContain('py.add(2, 3) -> 5');
      expect(client.out).toContain('chain(py.add(20, 1), node.double) -> 42');
      expect(client.code, client.out).toBe(0);
      expect(pyOut).toMatch(/Task py\.add\[[0-9a-f-]{36}\] succeeded/);
      expect(node.output()).toMatch(/"task":"node\.double".*task succeeded/);
    } finally {
      py.kill('SIGTERM');
    }
    // Both shut down warm: Celery on its first SIGTERM, celeriac on its own.
    expect(await pyExited).toBe(0);
    expect(await warmStop(node)).toEqual([0]);
  });
});
