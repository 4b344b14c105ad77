import { spawn } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, toWire, buildTaskMessage, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, CLI, FIXTURE_APP, startWorker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { PY_DIR, PYTHON, startPythonWorker } from '../helpers/python.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { freePort } from '../servers/redis.js';

/**
 * The operator commands run as real processes against real worker processes,
 * on Redis and on RabbitMQ: their output and exit codes, the dead-letter flow
 * from refusal to a successful requeued run, the broker-down case, metrics,
 * and Python Celery's own `celery inspect` / `celery events` seeing celeriac workers.
 */
let n = 0;

async function world(kind: 'redis' | 'amqp') {
  const id = ++n;
  const db = (id % 15) + 1;
  const redisUrl = inject('redisUrl').replace(/\/0$/, `/${db}`);
  const raw = new Redis(redisUrl);
  await raw.flushdb();
  await raw.quit();
  const url = kind === 'redis' ? redisUrl : await freshVhost(inject('amqpUrl'), inject('amqpNode'), `ops-${process.pid}-${id}`);
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: redisUrl, CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: redisUrl };
  return { url, env };
}

/** Commands that collect worker replies: 600 ms is ample on loopback and keeps the file short. */
const COLLECTS = new Set(['inspect', 'control', 'status', 'suspend', 'resume']);

/** Run one CLI command to its end: exit code, stdout and stderr apart. */
function run(given: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = COLLECTS.has(given[0]!) && !given.includes('-t') ? [...given, '-t', '600'] : given;
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** Python Celery's CLI against the same broker (Debian's python3-celery). */
function python(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  const proc = spawn(PYTHON, ['-m', 'celery', '-A', 'tasks', ...args], { cwd: PY_DIR, env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => proc.kill('SIGINT'), timeoutMs);
  return new Promise((resolve) => proc.on('exit', (code) => (clearTimeout(timer), resolve({ code: code ?? -1, out }))));
}

const json = <T>(text: string): T => JSON.parse(text) as T;

describe.each(['redis', 'amqp'] as const)('operator commands over %s', (kind) => {
  it('inspect, control, status, suspend/resume, call, result and purge against two workers', async () => {
    const { url, env } = await world(kind);
    await Promise.all([
      startWorker(['-A', FIXTURE_APP, '-n', 'ops@w1', '-c', '2'], env),
      startWorker(['-A', FIXTURE_APP, '-n', 'ops@w2', '-c', '2', '-E'], env),
    ]);
    const b = ['-b', url];

    const ping = await run(['inspect', 'ping', ...b, '--json'], env);
    expect(ping.code).toBe(0);
    expect(json(ping.stdout)).toEqual({ 'ops@w1': { ok: 'pong' }, 'ops@w2': { ok: 'pong' } });
    const registered = await run(['inspect', 'registered', ...b, '-d', 'ops@w1'], env);
    expect(registered.code).toBe(0);
    expect(registered.stdout).toMatch(/->  ops@w1: OK/);
    expect(registered.stdout).toContain('"tasks.add"');
    expect(registered.stdout).toContain('1 node online.');

    const rate = await run(['control', 'rate_limit', 'tasks.add', '100/s', ...b], env);
    expect(rate.code).toBe(0);
    expect(rate.stdout.match(/new rate limit set successfully/g)).toHaveLength(2);
    const badRate = await run(['control', 'rate_limit', 'tasks.nope', '1/s', ...b, '--json'], env);
    expect(json(badRate.stdout)).toEqual({ 'ops@w1': { error: 'unknown task' }, 'ops@w2': { error: 'unknown task' } });
    const grow = await run(['control', 'pool_grow', '2', ...b, '-d', 'ops@w1', '--json'], env);
    expect(json(grow.stdout)).toEqual({ 'ops@w1': { ok: 'pool will grow' } });
    const stats = json<Record<string, { pool: { 'max-concurrency': number } }>>((await run(['inspect', 'stats', ...b, '--json'], env)).stdout);
    expect(stats['ops@w1']!.pool['max-concurrency']).toBe(4);
    expect(stats['ops@w2']!.pool['max-concurrency']).toBe(2);

    // Suspended workers leave new tasks in the queue; status shows it; resume runs them.
    const suspend = await run(['suspend', ...b], env);
    expect(suspend.code).toBe(0);
    expect(suspend.stdout.match(/suspended: not taking new tasks/g)).toHaveLength(2);
    const called = await run(['call', 'tasks.add', '--args', '[20, 22]', ...b], env);
    expect(called.code).toBe(0);
    const id = called.stdout.trim();
    const pending = await run(['result', id, ...b], env);
    expect(pending.code).toBe(4);
    expect(pending.stdout).toContain('PENDING');
    await waitFor(async () => {
      const s = json<{ queues: { name: string; length: number }[] }>((await run(['status', ...b, '--json'], env)).stdout);
      return s.queues.find((q) => q.name === 'celery')?.length === 1;
    }, 'the task waiting in its queue');
    const status = await run(['status', ...b], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/celery\s+█+ 1/);
    expect(status.stdout).toMatch(/ops@w1\s+suspended/);
    expect(status.stdout).toMatch(/ops@w2\s+suspended/);
    expect(status.stdout).toContain('workers (2)');
    const report = json<{ workers: { hostname: string; events: boolean; lastHeartbeatAgo: number | null }[] }>((await run(['status', ...b, '--json'], env)).stdout);
    expect(report.workers.find((w) => w.hostname === 'ops@w1')).toMatchObject({ events: false, lastHeartbeatAgo: null });
    expect(report.workers.find((w) => w.hostname === 'ops@w2')).toMatchObject({ events: true, lastHeartbeatAgo: expect.any(Number) });
    // -i refreshes in place (a cleared screen per frame) until Ctrl-C.
    const live = celeriac(['status', ...b, '-i', '1', '-t', '300'], env);
    await waitFor(() => live.output().split('\x1b[H\x1b[2J').length >= 3, `two frames\n${live.output()}`, 15_000);
    live.proc.kill('SIGINT');
    expect(await live.exited).toBe(0);
    // A revoke from the command line is broadcast and kept in the result backend: the queued task never runs.
    const doomed = (await run(['call', 'tasks.add', '--args', '[0, 0]', ...b], env)).stdout.trim();
    const revoke = await run(['control', 'revoke', doomed, ...b], env);
    expect(revoke.stdout.match(new RegExp(`tasks ${doomed} flagged as revoked`, 'g'))).toHaveLength(2);
    expect((await run(['resume', ...b], env)).code).toBe(0);
    await waitFor(async () => (await run(['result', doomed, ...b], env)).code === 1, 'the revoked task skipped');
    expect((await run(['result', doomed, ...b], env)).stdout).toContain('REVOKED');
    await waitFor(async () => (await run(['result', id, ...b], env)).code === 0, 'the task run after resume');
    const done = await run(['result', id, ...b, '--json'], env);
    expect(json(done.stdout)).toMatchObject({ status: 'SUCCESS', result: 42 });
    const waited = await run(['call', 'tasks.add', '--args', '[1, 2]', '--wait', ...b], env);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(/SUCCESS[\s\S]*\n3\n/);
    const badArgs = await run(['call', 'tasks.add', '--args', '{"x":1}', ...b], env);
    expect(badArgs.code).toBe(2);
    expect(badArgs.stderr).toContain('--args: expected a JSON array');

    // Purge: refuses without a terminal or --yes; with --yes, empties the queue.
    await run(['suspend', ...b], env);
    for (let i = 0; i < 3; i++) await run(['call', 'tasks.add', '--args', '[1, 1]', ...b], env);
    const refused = await run(['purge', '-Q', 'celery', ...b], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Purge 3 message\(s\) from 1 queue\(s\): celery\? — refusing without --yes/);
    const purged = await run(['purge', '-Q', 'celery', '--yes', ...b], env);
    expect(purged.code).toBe(0);
    expect(purged.stdout).toContain('Purged 3 message(s) from 1 queue(s).');
    expect(json<{ queues: { name: string; length: number }[] }>((await run(['status', ...b, '--json'], env)).stdout).queues).toContainEqual({ name: 'celery', length: 0 });
    // `suspend` is remembered in the result backend: lift it, or workers of later tests on this database start suspended.
    expect((await run(['resume', ...b], env)).code).toBe(0);

    // Remote shutdown: both workers leave; ping then finds nobody (exit 1).
    expect((await run(['control', 'shutdown', ...b], env)).code).toBe(0);
    await waitFor(async () => (await run(['inspect', 'ping', ...b, '-t', '300'], env)).code === 1, 'no worker left');
    const nobody = await run(['inspect', 'ping', ...b, '-t', '300'], env);
    expect(nobody.stderr).toContain('No nodes replied');
  });

  it('failed: malformed, unknown-task and wrong-argument messages are listed and shown; once the fix is deployed, requeue --all runs the fixable ones and the malformed one comes back', async () => {
    const { url, env } = await world(kind);
    const b = ['-b', url];
    const old = await startWorker(['-A', FIXTURE_APP, '-n', 'ops@old'], env);
    const app: CeleriacApp = createApp({ broker: url, backend: env.CELERIAC_RESULT_BACKEND });
    try {
      const late = await app.sendTask<number>('tasks.late', [4]);
      const strict = await app.sendTask<number>('tasks.strict', ['4']);
      const transport = await app.transport();
      // A message whose body is not Celery's [args, kwargs, embed].
      const bad = toWire(buildTaskMessage({ task: 'tasks.add', id: 'bad-body-1', args: [1, 2], kwargs: {} }));
      await transport.publish('celery', { ...bad, body: '{"not": "a protocol v2 body"}' });
      let list = { code: -1, stdout: '' };
      await waitFor(async () => {
        list = await run(['failed', 'list', ...b], env);
        return list.stdout.includes('3 failed task(s)');
      }, 'all three dead-lettered');
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(new RegExp(`${late.id}\\s+tasks\\.late\\s+TASK_UNKNOWN\\s+celery`));
      expect(list.stdout).toMatch(/bad-body-1\s+tasks\.add\s+MESSAGE_MALFORMED\s+celery/);
      expect(list.stdout).toMatch(new RegExp(`${strict.id}\\s+tasks\\.strict\\s+TASK_ARGS_INVALID\\s+celery`));
      const malformed = await run(['failed', 'show', 'bad-body-1', ...b], env);
      expect(malformed.stdout).toMatch(/reason\s+MESSAGE_MALFORMED/);
      expect(malformed.stdout).toMatch(/error\s+\S/);
      const show = await run(['failed', 'show', late.id, ...b], env);
      expect(show.code).toBe(0);
      expect(show.stdout).toMatch(/reason\s+TASK_UNKNOWN/);
      expect(show.stdout).toMatch(/args\s+\(4,\)/);
      expect(show.stdout).toMatch(/result\s+FAILURE/);
      expect((await run(['failed', 'show', 'no-such-id', ...b], env)).code).toBe(1);
      // The fixed release is deployed (it knows tasks.late, and takes '4'); the old one leaves.
      await startWorker(['-A', FIXTURE_APP, '-n', 'ops@new'], { ...env, FIXTURE_WITH_LATE: '1' });
      old.proc.kill('SIGTERM');
      await old.exited;
      const one = await run(['failed', 'requeue', late.id, ...b], env);
      expect(one.code).toBe(0);
      expect(one.stdout).toContain('Requeued 1 task(s).');
      await expect(late.get({ timeout: 15_000 })).resolves.toBe(40);
      const all = await run(['failed', 'requeue', '--all', ...b], env);
      expect(all.stdout).toContain('Requeued 2 task(s).');
      await expect(strict.get({ timeout: 15_000 })).resolves.toBe(5);
      // The malformed one cannot be fixed by a deploy: refused again, back in the store with its reason.
      await waitFor(async () => {
        const after = json<{ id: string; reason: string }[]>((await run(['failed', 'list', ...b, '--json'], env)).stdout);
        return after.length === 1 && after[0]!.id === 'bad-body-1' && after[0]!.reason === 'MESSAGE_MALFORMED';
      }, 'the malformed message dead-lettered again');
      expect((await run(['failed', 'requeue', 'gone', ...b], env)).code).toBe(1);
      const purge = await run(['failed', 'purge', '--yes', ...b], env);
      expect(purge.stdout).toContain('Deleted 1 failed task(s).');
      expect((await run(['failed', 'list', ...b], env)).stdout).toContain('no failed tasks');
    } finally {
      await app.close();
    }
  });

  it('events: -E workers send the task\'s events, `celeriac events` prints them; metrics count them', async () => {
    const { url, env } = await world(kind);
    const w = await startWorker(['-A', FIXTURE_APP, '-n', 'ops@ev', '-E', '--metrics-port', '0'], env);
    await w.waitForOutput(/"url":"(http:[^"]+)","msg":"metrics served"/);
    const metricsUrl = /"url":"(http:[^"]+)","msg":"metrics served"/.exec(w.output())![1]!;
    const feed = celeriac(['events', '-b', url, '--json', '--filter', 'task.#', '--count', '3'], env);
    await feed.waitForOutput(/listening for events/);
    const called = await run(['call', 'tasks.add', '--args', '[2, 3]', '--wait', '-b', url], env);
    expect(called.code).toBe(0);
    expect(await feed.exited).toBe(0);
    const events = feed.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; hostname: string; uuid: string });
    expect(events.map((e) => e.type)).toEqual(['task-received', 'task-started', 'task-succeeded']);
    expect(new Set(events.map((e) => e.hostname))).toEqual(new Set(['ops@ev']));
    const text = await (await fetch(metricsUrl)).text();
    expect(text).toMatch(/celeriac_tasks_total\{[^}]*task="tasks.add"[^}]*state="succeeded"[^}]*\} 1/);
    expect(text).toMatch(/celeriac_task_runtime_seconds_count\{[^}]*task="tasks.add"[^}]*\} 1/);
    expect(text).toMatch(/celeriac_queue_length\{[^}]*queue="celery"[^}]*\} 0/);
  });

  it("Python's `celery inspect ping|registered` and `celery events --dump` see celeriac workers; celeriac's inspect reaches Python workers", async () => {
    const { url, env } = await world(kind);
    await startWorker(['-A', FIXTURE_APP, '-n', 'ops@py', '-E'], env);
    const ping = await python(['inspect', 'ping', '-t', '3'], env);
    expect(ping.code).toBe(0);
    expect(ping.out).toMatch(/->\s+ops@py: OK\s+pong/);
    const registered = await python(['inspect', 'registered', '-t', '3'], env);
    expect(registered.out).toMatch(/\* tasks\.add/);
    expect(registered.out).toMatch(/\* tasks\.sleepy/);
    const dump = spawn(PYTHON, ['-m', 'celery', '-A', 'tasks', 'events', '--dump'], { cwd: PY_DIR, env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dump.stdout.on('data', (b: Buffer) => (out += b.toString()));
    dump.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await waitFor(() => /ops@py \[.*\] heartbeat/.test(out), `a heartbeat in celery events --dump\n${out}`, 30_000);
      const called = await run(['call', 'tasks.add', '--args', '[5, 6]', '--wait', '-b', url], env);
      expect(called.code).toBe(0);
      await waitFor(() => /task succeeded: tasks\.add\(/.test(out), `task events in the dump\n${out}`, 15_000);
      expect(out).toMatch(/ops@py \[.*\] task received: tasks\.add\([0-9a-f-]+\) args=\(5, 6\)/);
      expect(out).toMatch(/task succeeded: tasks\.add\([0-9a-f-]+\).* result=11/);
    } finally {
      dump.kill('SIGKILL');
    }
    // And the other way: celeriac's commands reach a Python worker beside the celeriac one
    // (started last: it would take tasks from the shared queue, and it sends no events).
    await startPythonWorker(env);
    const both = json<Record<string, unknown>>((await run(['inspect', 'ping', '-b', url, '--json'], env)).stdout);
    expect(Object.keys(both).sort()).toEqual(['ops@py', expect.stringMatching(/^celery@/)].sort());
    expect(Object.values(both)).toEqual([{ ok: 'pong' }, { ok: 'pong' }]);
    const pyRegistered = json<Record<string, string[]>>((await run(['inspect', 'registered', '-b', url, '--json'], env)).stdout);
    expect(Object.entries(pyRegistered).find(([node]) => node.startsWith('celery@'))?.[1]).toContain('tasks.xsum');
  });
});

describe('operator commands with the broker down', () => {
  it.each(['redis', 'amqp'] as const)('%s: every command prints one line naming the broker and exits 3', async (kind) => {
    const port = await freePort();
    const url = kind === 'redis' ? `redis://:s3cret@127.0.0.1:${port}/0` : `amqp://guest:s3cret@127.0.0.1:${port}/`;
    const env = { CELERIAC_RESULT_BACKEND: `redis://127.0.0.1:${port}/1` };
    const commands = [
      ['inspect', 'ping'], ['control', 'pool_grow'], ['status'], ['purge', '--yes'], ['failed', 'list'], ['failed', 'show', 'x'], ['failed', 'requeue', '--all'],
      ['failed', 'purge', '--yes'], ['suspend'], ['resume'], ['result', 'x'], ['call', 'tasks.add'], ['events', '--count', '1'],
    ];
    for (const args of commands) {
      const r = await run([...args, '-b', url], env);
      expect({ args, code: r.code }).toEqual({ args, code: 3 });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^celeriac: cannot reach the broker at ${kind}://`));
      expect(r.stderr).not.toContain('s3cret');
    }
  });
});
