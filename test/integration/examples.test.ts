/**
 * Smoke runs of the examples under examples/: each starts what its README says to start (workers through the
 * real `celeriac` CLI, on the example's built dist), runs its client, checks what the client printed, and stops
 * everything with a warm shutdown (exit code 0). Servers come from the integration setup; every example gets
 * its own key prefix or queue names.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ROOT, startWorker, type Spawned } from '../helpers/processes.js';
import { PYTHON } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLES = join(ROOT, 'examples');
const run = `${process.pid}-${Date.now()}`;

interface NodeProcess {
  readonly proc: ChildProcess;
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<number | string>;
}

const started = new Set<NodeProcess>();
afterEach(async () => {
  for (const p of started) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  await Promise.all([...started].map((p) => p.exited));
  started.clear();
});

/** Start one of an example's scripts as its README does: `node dist/<script>` from the example's directory. */
function startNode(example: string, script: string, env: Record<string, string>): NodeProcess {
  const proc = spawn(process.execPath, [join('dist', script)], { cwd: join(EXAMPLES, example), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const p: NodeProcess = {
    proc,
    output: () => out,
    waitForOutput: (pattern, timeoutMs = 20_000) => waitFor(() => out.match(pattern), `${script} to print ${pattern}\n--- output so far ---\n${out}`, timeoutMs, 20),
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1))),
  };
  started.add(p);
  return p;
}

/** Run a script to its end (bounded: killed after `timeoutMs`): its exit code and everything it printed. */
async function runNode(example: string, script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | string; out: string }> {
  const p = startNode(example, script, env);
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, out: p.output() };
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

describe('examples/http: an HTTP API that enqueues and awaits, or enqueues and is polled, on the embedded broker', () => {
  it('POST /add answers the sum; POST /jobs answers 202 and GET /jobs/:id reaches SUCCESS with the report', async () => {
    const dir = tempDir('celeriac-ex-http-');
    const env = { CELERIAC_BROKER_URL: `sqlite://${join(dir, 'celeriac.db')}`, PORT: '0' };
    const worker = await exampleWorker('http', [], env);
    const server = startNode('http', 'server.js', env);
    const [, base] = await server.waitForOutput(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    const sum = await post('/add', { a: 2, b: 3 });
    expect(sum.status).toBe(200);
    expect(await sum.json()).toEqual({ result: 5 });
    const bad = await post('/add', { a: 'two', b: 3 });
    expect(bad.status).toBe(400);

    const accepted = await post('/jobs', { rows: 200 });
    expect(accepted.status).toBe(202);
    const { id, status } = (await accepted.json()) as { id: string; status: string };
    expect(status).toBe(`/jobs/${id}`);
    expect(accepted.headers.get('location')).toBe(status);
    const seen = new Set<string>();
    const done = await waitFor(async () => {
      const job = (await (await fetch(`${base}${status}`)).json()) as { state: string; result?: unknown; progress?: unknown };
      seen.add(job.state);
      return job.state === 'SUCCESS' ? job : undefined;
    }, 'the job to reach SUCCESS', 20_000, 20);
    // 1² + 2² + ... + 200²
    expect(done).toEqual({ id, state: 'SUCCESS', result: { rows: 200, total: (200 * 201 * 401) / 6 } });
    for (const state of seen) expect(['PENDING', 'STARTED', 'PROGRESS', 'SUCCESS']).toContain(state);
    expect(await (await fetch(`${base}/jobs/no-such-job`)).json()).toEqual({ id: 'no-such-job', state: 'PENDING' });

    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(await warmStop(worker)).toEqual([0]);
  });
});

describe('examples/process-pool: CPU-bound tasks on --pool process, and a runaway killed at its hard time limit', () => {
  it('the runaway fails with TimeLimitExceeded while the other child serves, and the pool serves on after the kill', async () => {
    const dir = tempDir('celeriac-ex-pool-');
    const env = { CELERIAC_BROKER_URL: `sqlite://${join(dir, 'celeriac.db')}` };
    const worker = await exampleWorker('process-pool', ['--pool', 'process', '-c', '2'], env);
    const client = await runNode('process-pool', 'client.js', env);
    expect(client.code, client.out).toBe(0);
    for (const [limit, primes] of [[1_000_000, 78_498], [1_500_000, 114_155], [2_000_000, 148_933]]) expect(client.out).toMatch(new RegExp(`primes below ${limit}: ${primes} \\(child pid \\d+\\)`));
    let digest = Buffer.from('celeriac');
    for (let i = 0; i < 200_000; i++) digest = createHash('sha256').update(digest).digest();
    expect(client.out).toContain(`sha256 x 200000 of "celeriac": ${digest.toString('hex').slice(0, 16)}…`);
    const runaway = client.out.match(/runaway: TimeLimitExceeded \(TIME_LIMIT, limit 1 s\), failed (\d+) ms after it was sent/);
    expect(runaway, client.out).not.toBeNull();
    // Killed at its 1 s limit, not left to run until the client's 30 s timeout.
    expect(Number(runaway![1])).toBeLessThan(15_000);
    const childPids = (re: RegExp) => [...client.out.matchAll(re)].map((m) => Number(m[1]));
    expect(childPids(/after the kill, primes below (?:500000: 41538|600000: 49098) \(child pid (\d+)\)/g)).toHaveLength(2);
    // The pids are the worker's children, not the worker itself: the work ran in the pool.
    expect(childPids(/\(child pid (\d+)\)/g)).not.toContain(worker.pid);
    expect(worker.output()).toMatch(/TimeLimitExceeded|time limit/i);
    expect(await warmStop(worker)).toEqual([0]);
  });
});
