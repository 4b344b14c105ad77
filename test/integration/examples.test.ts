/**
 * Smoke runs of the examples under examples/: each starts what its README says to start (workers through the
 * real `celeriac` CLI, on the example's built dist), runs its client, checks what the client printed, and stops
 * everything with a warm shutdown (exit code 0). Servers come from the integration setup; every example gets
 * its own key prefix or queue names.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

/** What a process prints for a promise left unobserved or an exception nothing caught (as test/helpers/processes.ts checks). */
const UNHANDLED = /celeriac: (unhandled rejection|uncaught exception)|UnhandledPromiseRejection|Uncaught (Exception|Error)|triggerUncaughtException/;

const started = new Set<NodeProcess>();
afterEach(async () => {
  for (const p of started) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  await Promise.all([...started].map((p) => p.exited));
  const bad = [...started].filter((p) => UNHANDLED.test(p.output()));
  started.clear();
  if (bad.length) throw new Error(`unhandled error in a spawned process:\n${bad.map((p) => p.output()).join('\n---\n')}`);
});

/** Start `node <argv>` in an example's directory. */
function startIn(example: string, argv: string[], env: Record<string, string>): NodeProcess {
  const proc = spawn(process.execPath, argv, { cwd: join(EXAMPLES, example), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const p: NodeProcess = {
    proc,
    output: () => out,
    waitForOutput: (pattern, timeoutMs = 20_000) => waitFor(() => out.match(pattern), `${argv.join(' ')} to print ${pattern}\n--- output so far ---\n${out}`, timeoutMs, 20),
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1))),
  };
  started.add(p);
  return p;
}

/** Start one of an example's scripts as its README does: `node dist/<script>` from the example's directory. */
function startNode(example: string, script: string, env: Record<string, string>): NodeProcess {
  return startIn(example, [join('dist', script)], env);
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
async function warmStop(...procs: { proc: ChildProcess; exited: Promise<number | string> }[]): Promise<(number | string)[]> {
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

/** A systemd unit file as sections of key → values (a key may repeat, e.g. Environment=). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let section: Record<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) section = sections[header[1]!] = {};
    else {
      const eq = line.indexOf('=');
      expect(eq, `a key=value line: ${line}`).toBeGreaterThan(0);
      expect(section, `a line before any [Section]: ${line}`).toBeDefined();
      (section![line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
    }
  }
  return sections;
}

/** The one value of a key. */
function one(section: Record<string, string[]> | undefined, key: string): string {
  const values = section?.[key];
  expect(values, `${key}=`).toHaveLength(1);
  return values![0]!;
}

/** `--drain-timeout <ms>` of a command line (the CLI's default, 30 s, when absent). */
function drainTimeoutOf(argv: readonly string[]): number {
  const at = argv.indexOf('--drain-timeout');
  return at === -1 ? 30_000 : Number(argv[at + 1]);
}

describe('examples/deployment: systemd units and a compose file for a worker and beat', () => {
  const dir = join(EXAMPLES, 'deployment');
  const unitPath = (name: string) => join(dir, 'systemd', name);
  const worker = () => parseUnit(readFileSync(unitPath('celeriac-worker.service'), 'utf8'));
  const beat = () => parseUnit(readFileSync(unitPath('celeriac-beat.service'), 'utf8'));

  it('the units are well-formed (systemd-analyze verify) and have what a graceful stop needs', () => {
    if (existsSync('/usr/bin/systemd-analyze')) {
      // verify exits 0 on unknown keys and unparsable values and only prints them: nothing may be printed.
      const r = spawnSync('/usr/bin/systemd-analyze', ['verify', '--man=no', unitPath('celeriac-worker.service'), unitPath('celeriac-beat.service')], { encoding: 'utf8', timeout: 30_000 });
      expect({ status: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ status: 0, stderr: '', stdout: '' });
    }
    const w = worker();
    const argv = one(w.Service, 'ExecStart').split(/\s+/);
    expect(argv.slice(0, 5)).toEqual(['/usr/bin/node', `${one(w.Service, 'WorkingDirectory')}/node_modules/@celeriac/worker/bin/celeriac.js`, 'worker', '-A', 'dist/tasks.js']);
    expect(one(w.Service, 'Type')).toBe('simple');
    expect(one(w.Service, 'KillSignal')).toBe('SIGTERM');
    expect(one(w.Service, 'KillMode')).toBe('mixed');
    // systemd's SIGKILL must come after the drain: TimeoutStopSec (seconds) longer than --drain-timeout (ms).
    expect(Number(one(w.Service, 'TimeoutStopSec')) * 1000).toBeGreaterThan(drainTimeoutOf(argv));
    expect(one(w.Service, 'Restart')).toBe('on-failure');
    expect(one(w.Service, 'RestartPreventExitStatus')).toBe('2');
    expect(one(w.Install, 'WantedBy')).toBe('multi-user.target');
    const b = beat();
    expect(one(b.Service, 'ExecStart').split(/\s+/)).toEqual(['/usr/bin/node', `${one(b.Service, 'WorkingDirectory')}/node_modules/@celeriac/worker/bin/celeriac.js`, 'beat', '-A', 'dist/tasks.js']);
    expect(one(b.Service, 'KillSignal')).toBe('SIGTERM');
    expect(one(b.Install, 'WantedBy')).toBe('multi-user.target');
  });

  it('their ExecStart lines run: a worker and beat that run the schedule, and stop warm on SIGTERM within TimeoutStopSec', async () => {
    const env = { CELERIAC_BROKER_URL: `${inject('redisUrl')}?keyPrefix=ex-deploy-${run}:`, PURGE_EVERY: '1s' };
    const processes = [worker(), beat()].map((unit) => {
      const service = unit.Service!;
      const [, script, ...args] = one(service, 'ExecStart').split(/\s+/);
      const environment = Object.fromEntries((service.Environment ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      // The unit's paths are under WorkingDirectory; here the example's directory stands in for it, and %H is the host.
      const local = script!.replace(one(service, 'WorkingDirectory'), dir);
      expect(existsSync(local), local).toBe(true);
      const proc = startIn('deployment', [local, ...args.map((a) => a.replace('%H', 'localhost'))], { ...environment, ...env });
      return { proc, stopWithin: Number(one(service, 'TimeoutStopSec')) * 1000 };
    });
    const [w, b] = processes as [(typeof processes)[0], (typeof processes)[0]];
    await w.proc.waitForOutput(/"msg":"worker ready"/, 30_000);
    await b.proc.waitForOutput(/"msg":"beat ready"/, 30_000);
    expect(w.proc.output()).toContain('"hostname":"worker@localhost"');
    // Beat sends the purge every second; the worker runs it.
    await w.proc.waitForOutput(/purged expired sessions/, 20_000);
    await w.proc.waitForOutput(/"task":"maintenance\.purge_sessions".*"msg":"task succeeded"/, 20_000);
    const stopping = Date.now();
    const codes = await warmStop(w.proc, b.proc);
    expect(codes).toEqual([0, 0]);
    expect(Date.now() - stopping).toBeLessThan(Math.min(w.stopWithin, b.stopWithin));
    expect(w.proc.output()).toContain('warm shutdown');
  });

  it('compose.yaml parses, runs the units\' commands, persists Redis without eviction and gives the drain time to stop', () => {
    // `yaml` is the example's devDependency: resolved from its directory.
    const { parse } = createRequire(join(dir, 'package.json'))('yaml') as { parse: (text: string) => unknown };
    const compose = parse(readFileSync(join(dir, 'compose.yaml'), 'utf8')) as {
      services: Record<string, { command: string[]; environment?: Record<string, string>; stop_grace_period?: string; init?: boolean; depends_on?: Record<string, { condition: string }>; image?: string; build?: { context: string; dockerfile: string } }>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['beat', 'redis', 'worker']);
    const { redis, worker: w, beat: b } = compose.services as Record<'redis' | 'worker' | 'beat', (typeof compose.services)[string]>;
    expect(redis.command.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.command.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(Object.keys(compose.volumes)).toEqual(['redis-data']);
    // The image builds from the repository root with this example's Dockerfile.
    expect(existsSync(join(dir, w.build!.context, w.build!.dockerfile))).toBe(true);
    expect(b.image).toBe(w.image);
    const seconds = (s: string) => Number(s.match(/^(\d+)s$/)![1]);
    const unitArgs = (unit: Record<string, Record<string, string[]>>) => one(unit.Service, 'ExecStart').split(/\s+/).slice(2).filter((a, i, all) => a !== '--hostname' && all[i - 1] !== '--hostname');
    for (const [service, unit] of [[w, worker()], [b, beat()]] as const) {
      // The same CLI and arguments as the systemd unit (but the node name: each replica keeps its default).
      expect(service.command.slice(0, 2)).toEqual(['node', 'node_modules/@celeriac/worker/bin/celeriac.js']);
      expect(service.command.slice(2)).toEqual(unitArgs(unit));
      expect(service.init).toBe(true);
      expect(service.environment).toEqual({ CELERIAC_BROKER_URL: 'redis://redis:6379/0' });
      expect(service.depends_on?.redis).toEqual({ condition: 'service_healthy' });
    }
    expect(seconds(w.stop_grace_period!) * 1000).toBeGreaterThan(drainTimeoutOf(w.command));
    expect(seconds(b.stop_grace_period!)).toBeGreaterThan(0);
  });
});
