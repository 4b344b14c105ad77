import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { AmqpTransport, createApp, ErrorCodes, listenEvents, REDIS_KEYS, RedisTransport, SqliteTransport, TaskError, type CeleriacApp, type CeleryEvent } from '@celeriac/core/spi';
import { celeriac, FIXTURE_APP, HARD_LIMIT_APP, startWorker } from '../helpers/processes.js';
import { freePort, startRedisOn } from '../servers/redis.js';
import { readEffects } from '../helpers/effects.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const dir = tempDir('celeriac-proc-');
let n = 0;
const clients: CeleriacApp[] = [];

type Kind = 'sqlite' | 'redis' | 'amqp';

/**
 * A fresh broker shared by the test's client and its worker processes: a SQLite
 * file, a key prefix of its own on the run's redis-server, or a vhost of its own
 * on the run's RabbitMQ node (results then in Redis, the usual Celery pairing).
 */
function world(kind: Kind = 'sqlite', extraEnv: Record<string, string> = {}) {
  const id = ++n;
  const redisUrl = `${inject('redisUrl')}?keyPrefix=w${process.pid}-${id}:`;
  const url = kind === 'sqlite' ? `sqlite://${join(dir, `w${id}.db`)}` : kind === 'redis' ? redisUrl : freshVhostSync(`w${process.pid}-${id}`);
  const backend = kind === 'amqp' ? redisUrl : url;
  const effects = join(dir, `effects-${id}.jsonl`);
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend, EFFECTS_FILE: effects, CELERIAC_LOGLEVEL: 'info', ...extraEnv };
  const client = createApp({ broker: url, backend, visibilityTimeout: Number(extraEnv.FIXTURE_VISIBILITY_MS ?? 30_000) });
  clients.push(client);
  return { url, env, effects, client };
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

/** A vhost of its own on the run's RabbitMQ node (synchronous, so `world` stays a plain function). */
function freshVhostSync(name: string): string {
  const node = inject('amqpNode');
  execFileSync('rabbitmqctl', ['-n', node, 'add_vhost', name], { stdio: 'ignore' });
  execFileSync('rabbitmqctl', ['-n', node, 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*'], { stdio: 'ignore' });
  return `${inject('amqpUrl')}/${name}`;
}

/** Messages delivered and not yet acknowledged, read from the broker's own records. */
async function unackedCount(client: CeleriacApp): Promise<number> {
  const transport = await client.transport();
  if (transport instanceof AmqpTransport) {
    const vhost = decodeURIComponent(new URL(client.config.broker.url.href).pathname.slice(1));
    const out = execFileSync('rabbitmqctl', ['-n', inject('amqpNode'), 'list_queues', '-p', vhost, '-q', '--no-table-headers', 'messages_unacknowledged'], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean).reduce((n, l) => n + Number(l.trim()), 0);
  }
  if (transport instanceof SqliteTransport) {
    return (transport.db.prepare('SELECT COUNT(*) AS n FROM messages WHERE owner IS NOT NULL').get() as { n: number }).n;
  }
  if (transport instanceof RedisTransport) return transport.redis.hlen(REDIS_KEYS.unacked);
  throw new Error(`no unacked count for ${transport.kind}`);
}

describe('celeriac worker CLI', () => {
  it('loads a .ts module, runs tasks sent from another process, and logs with task id and name', async () => {
    const { env, client } = world();
    const worker = await startWorker(['-A', FIXTURE_APP, '-c', '2'], env);
    const r = await client.sendTask<number>('tasks.add', [2, 3]);
    expect(await r.get({ timeout: 10_000 })).toBe(5);
    await worker.waitForOutput(new RegExp(`"taskId":"${r.id}","task":"tasks.add".*task succeeded`));
  });

  it('--help lists the options; bad input is one clear line and a non-zero exit', async () => {
    const help = celeriac(['worker', '--help']);
    expect(await help.exited).toBe(0);
    for (const flag of ['-A, --app', '-Q, --queues', '-c, --concurrency', '--pool', '--prefetch', '-n, --hostname', '--loglevel', '-B', 'CELERIAC_APP']) {
      expect(help.output()).toContain(flag);
    }
    const missing = celeriac(['worker']);
    expect(await missing.exited).not.toBe(0);
    expect(missing.output()).toMatch(/required option '-A, --app <module>' not specified/);
    const badC = celeriac(['worker', '-A', FIXTURE_APP, '-c', '0']);
    expect(await badC.exited).not.toBe(0);
    expect(badC.output()).toMatch(/expected a positive integer, got "0"/);
    const noFile = celeriac(['worker', '-A', './nope/tasks.ts']);
    expect(await noFile.exited).toBe(2);
    expect(noFile.output()).toMatch(/^celeriac: -A \.\/nope\/tasks\.ts: no such file/m);
    expect(noFile.output()).not.toMatch(/\n\s+at /);
    const badPool = celeriac(['worker', '-A', FIXTURE_APP, '--pool', 'threads']);
    expect(await badPool.exited).not.toBe(0);
    expect(badPool.output()).toMatch(/Allowed choices are async, process/);
    const badUrl = celeriac(['worker', '-A', FIXTURE_APP], { CELERIAC_BROKER_URL: 'kafka://u:secret@h' });
    expect(await badUrl.exited).toBe(2);
    expect(badUrl.output()).toMatch(/URL_INVALID: CELERIAC_BROKER_URL: unsupported URL scheme "kafka"/);
    expect(badUrl.output()).not.toContain('secret');
  });

  it('an unreachable broker is one clear line and a retry with backoff; the worker starts once the broker is up', async () => {
    const port = await freePort();
    const url = `redis://:s3cret@127.0.0.1:${port}/0`;
    const w = celeriac(['worker', '-A', FIXTURE_APP], { CELERIAC_BROKER_URL: url });
    await w.waitForOutput(/retrying in 1000 ms \(attempt 2\)/);
    expect(w.output()).toMatch(new RegExp(`cannot connect to broker redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: .*retrying in 500 ms \\(attempt 1\\)`));
    expect(w.output()).not.toContain('s3cret');
    expect(w.output()).not.toMatch(/\n\s+at /);
    const redis = await startRedisOn(port, ['--requirepass', 's3cret']);
    try {
      await w.waitForOutput(/worker ready/, 30_000);
      const client = createApp({ broker: url });
      clients.push(client);
      expect(await (await client.sendTask<number>('tasks.add', [20, 22])).get({ timeout: 10_000 })).toBe(42);
    } finally {
      w.proc.kill('SIGKILL');
      await w.exited;
      await redis.stop();
    }
  });

  it('every option also reads an env var', async () => {
    const { env, client } = world();
    const worker = await startWorker([], { ...env, CELERIAC_APP: FIXTURE_APP, CELERIAC_QUEUES: 'other', CELERIAC_CONCURRENCY: '3', CELERIAC_HOSTNAME: 'envnode@here' });
    await worker.waitForOutput(/"hostname":"envnode@here","queues":\["other"\],"concurrency":3/);
    const r = await client.sendTask<number>('tasks.add', [1, 1], {}, { queue: 'other' });
    expect(await r.get({ timeout: 10_000 })).toBe(2);
  });

  it('prefetch never exceeds free slots: a long task does not block a short one while a slot is free', async () => {
    const { env, client, effects } = world();
    await startWorker(['-A', FIXTURE_APP, '-c', '2'], env);
    const long = await client.sendTask('tasks.sleepy', [4000, 'long']);
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'start' && e.tag === 'long'), 'long task started');
    const short = await client.sendTask<number>('tasks.add', [1, 2]);
    expect(await short.get({ timeout: 3000 })).toBe(3);
    expect(await long.ready()).toBe(false);
  });
});

/** CPU time (user + system, ms) a process has used so far, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

describe('the embedded broker waits without burning CPU', () => {
  it('an idle worker uses next to no CPU, and still picks up a new task at once', async () => {
    const { env, client } = world('sqlite');
    const w = await startWorker(['-A', FIXTURE_APP], env);
    // Let start-up settle, then measure a quiet stretch (a busy-polling loop would use ~100 % of a core).
    await waitFor(async () => (await (await client.sendTask<number>('tasks.add', [0, 0])).get({ timeout: 5000 })) === 0, 'worker serving');
    const before = cpuMs(w.pid);
    const started = Date.now();
    await waitFor(() => Date.now() - started >= 3000, 'a quiet stretch', 5000, 250);
    const used = cpuMs(w.pid) - before;
    expect(used / (Date.now() - started)).toBeLessThan(0.1);
    expect(await (await client.sendTask<number>('tasks.add', [5, 5])).get({ timeout: 2000 })).toBe(10);
  });
});

describe('the embedded broker is durable', () => {
  it('a restart of every process keeps queued and delayed tasks and stored results', async () => {
    const { url, env, client } = world('sqlite');
    const w1 = await startWorker(['-A', FIXTURE_APP], env);
    const done = await client.sendTask<number>('tasks.add', [1, 2]);
    expect(await done.get({ timeout: 10_000 })).toBe(3);
    w1.proc.kill('SIGTERM');
    await w1.exited;
    const queued = [await client.sendTask<number>('tasks.add', [2, 2]), await client.sendTask<number>('tasks.add', [3, 3])];
    const delayed = await client.sendTask<number>('tasks.add', [4, 4], {}, { countdown: 1500 });
    await client.close();
    // Every process is gone; new ones open the same file.
    const again = createApp({ broker: url });
    clients.push(again);
    expect(await again.asyncResult(done.id).get({ timeout: 1000 })).toBe(3);
    const transport = (await again.transport()) as SqliteTransport;
    expect(await transport.length('celery')).toBe(2);
    expect(await transport.delayedCount()).toBe(1);
    await startWorker(['-A', FIXTURE_APP], env);
    expect(await Promise.all([...queued, delayed].map((r) => again.asyncResult<number>(r.id).get({ timeout: 10_000 })))).toEqual([4, 6, 8]);
  });
});

describe.each(['sqlite', 'redis', 'amqp'] as const)('worker faults over %s', (kind) => {
  it('kill -9 of a worker mid-task: the task completes exactly once afterwards, nothing lost (T02 at CI size)', async () => {
    const { env, client, effects } = world(kind, { FIXTURE_VISIBILITY_MS: '1500' });
    const a = await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await client.sendTask('tasks.sleepy', [600, `t${i}`]));
    await waitFor(() => readEffects(effects).filter((e) => e.kind === 'start' && e.pid === a.pid).length >= 4, 'four tasks running on A');
    const orphans = readEffects(effects).filter((e) => e.kind === 'start' && e.pid === a.pid).map((e) => e.tag);
    const killedAt = Date.now();
    a.proc.kill('SIGKILL');
    await a.exited;
    await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    for (const r of results) await r.get({ timeout: 20_000 });
    const effectsNow = readEffects(effects);
    const ends = effectsNow.filter((e) => e.kind === 'end');
    // Exactly once: every tag completed, none twice.
    expect(ends.map((e) => e.tag).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `t${i}`).sort());
    // Orphans start again within the visibility window + the restore interval + a worker start-up.
    for (const tag of orphans) {
      const restarted = effectsNow.find((e) => e.kind === 'start' && e.tag === tag && e.t > killedAt);
      expect(restarted, String(tag)).toBeDefined();
      expect(restarted!.t - killedAt).toBeLessThan(1500 + 375 + 3000);
    }
  });

  it('a long task that outlives the visibility window is not run twice while its worker lives', async () => {
    const { env, client, effects } = world(kind, { FIXTURE_VISIBILITY_MS: '600' });
    await startWorker(['-A', FIXTURE_APP, '-c', '1'], env);
    await startWorker(['-A', FIXTURE_APP, '-c', '1'], env);
    const r = await client.sendTask('tasks.sleepy', [2500, 'long-lease']);
    expect(await r.get({ timeout: 15_000 })).toBe('long-lease');
    expect(readEffects(effects).filter((e) => e.kind === 'start')).toHaveLength(1);
  });

  it('SIGTERM is a warm shutdown: the running task finishes and is acked, unstarted ones stay queued', async () => {
    const { env, client, effects } = world(kind);
    const w = await startWorker(['-A', FIXTURE_APP, '-c', '1'], env);
    const running = await client.sendTask('tasks.sleepy', [1500, 'drain']);
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'start'), 'task started');
    const queued = await client.sendTask('tasks.add', [1, 1]);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(await running.get({ timeout: 1000 })).toBe('drain');
    expect(await queued.state()).toBe('PENDING');
    const transport = await client.transport();
    expect(await transport.length('celery')).toBe(1);
  });

  it('SIGTERM drain keeps acks prompt: the short task is acked before the kill, only the long one runs again (T05 at CI size)', async () => {
    const { env, client, effects } = world(kind, { FIXTURE_VISIBILITY_MS: '1500' });
    const a = await startWorker(['-A', FIXTURE_APP, '-c', '2', '--prefetch', '2', '--drain-timeout', '10000'], env);
    const long = await client.sendTask('tasks.sleepy', [6000, 'L']);
    const short = await client.sendTask('tasks.sleepy', [1200, 'S']);
    await waitFor(() => readEffects(effects).filter((e) => e.kind === 'start').length === 2, 'L and S running');
    a.proc.kill('SIGTERM');
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'end' && e.tag === 'S'), 'S finished during the drain');
    expect(await short.get({ timeout: 5000 })).toBe('S');
    // S's ack reached the broker while L still runs: exactly one message is still unacknowledged.
    await waitFor(async () => (await unackedCount(client)) === 1, 'only L unacknowledged');
    a.proc.kill('SIGKILL');
    await a.exited;
    await startWorker(['-A', FIXTURE_APP, '-c', '2'], env);
    expect(await long.get({ timeout: 30_000 })).toBe('L');
    const all = readEffects(effects);
    expect(all.filter((e) => e.tag === 'S' && e.kind === 'start')).toHaveLength(1);
    expect(all.filter((e) => e.tag === 'L' && e.kind === 'start')).toHaveLength(2);
    expect(all.filter((e) => e.tag === 'L' && e.kind === 'end')).toHaveLength(1);
  });

  it('a warm shutdown past its drain timeout exits within drain + 2 s and returns the unfinished task', async () => {
    const { env, client, effects } = world(kind);
    const w = await startWorker(['-A', FIXTURE_APP, '-c', '1', '--drain-timeout', '1000'], env);
    const r = await client.sendTask('tasks.sleepy', [30_000, 'too-long']);
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'start'), 'task started');
    const signalled = Date.now();
    w.proc.kill('SIGTERM');
    await w.exited;
    expect(Date.now() - signalled).toBeLessThan(1000 + 2000);
    expect(await r.state()).toBe('PENDING');
    await waitFor(async () => (await (await client.transport()).length('celery')) === 1, 'task back in the queue');
  });

  it('a second signal is a cold shutdown: the running task returns to the queue and runs later', async () => {
    const { env, client, effects } = world(kind);
    const w = await startWorker(['-A', FIXTURE_APP, '-c', '1'], env);
    const r = await client.sendTask('tasks.sleepy', [20_000, 'cold']);
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'start'), 'task started');
    w.proc.kill('SIGTERM');
    await w.waitForOutput(/warm shutdown/);
    w.proc.kill('SIGINT');
    expect(await w.exited).toBe(1);
    expect(await r.state()).toBe('PENDING');
    expect(await (await client.transport()).length('celery')).toBe(1);
  });

  it('automatic retries with exponential backoff end in SUCCESS, or in FAILURE with the last error when exhausted', async () => {
    const { env, client, effects } = world(kind);
    await startWorker(['-A', FIXTURE_APP], env);
    const ok = await client.sendTask('tasks.flaky', [3]);
    expect(await ok.get({ timeout: 10_000 })).toBe(2);
    const attempts = readEffects(effects).filter((e) => e.kind === 'attempt' && e.id === ok.id);
    expect(attempts.map((a) => a.retries)).toEqual([0, 1, 2]);
    // Backoff 100 ms then 200 ms, delivered later by the broker.
    expect(attempts[1]!.t - attempts[0]!.t).toBeGreaterThanOrEqual(95);
    expect(attempts[2]!.t - attempts[1]!.t).toBeGreaterThanOrEqual(195);
    const exhausted = await client.sendTask('tasks.flaky', [10]);
    const err = (await exhausted.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.excMessage).toBe('attempt 4 failed');
  });

  it('a soft time limit aborts the task signal: FAILURE SoftTimeLimitExceeded', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', FIXTURE_APP], env);
    const r = await client.sendTask('tasks.soft', []);
    const err = (await r.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('SoftTimeLimitExceeded');
    expect(err.code).toBe(ErrorCodes.SOFT_TIME_LIMIT);
  });

  it('a rate limit spaces runs without holding slots: 5/s books runs 200 ms apart', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    const sentAt = Date.now();
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push(await client.sendTask<number>('tasks.rated', []));
    const times = (await Promise.all(rs.map((r) => r.get({ timeout: 10_000 })))).sort((a, b) => a - b);
    // Slots are booked 200 ms apart from the first one (which is no earlier than the send): the i-th run is no earlier than i slots later.
    for (let i = 1; i < times.length; i++) expect(times[i]! - sentAt).toBeGreaterThanOrEqual(i * 200 - 5);
    // Meanwhile other tasks are not held up.
    expect(await (await client.sendTask<number>('tasks.add', [2, 2])).get({ timeout: 3000 })).toBe(4);
  });

  it('revoke with terminate stops a running task: REVOKED', async () => {
    const { env, client, effects } = world(kind);
    await startWorker(['-A', FIXTURE_APP], env);
    const r = await client.sendTask('tasks.sleepy', [20_000, 'victim']);
    await waitFor(() => readEffects(effects).some((e) => e.kind === 'start'), 'task started');
    await r.revoke({ terminate: true });
    const err = (await r.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TaskRevokedError');
    expect(readEffects(effects).some((e) => e.kind === 'end')).toBe(false);
  });
});

describe.each(['sqlite', 'redis', 'amqp'] as const)('process pool over %s', (kind) => {
  it("a child's this.log lines reach the task's final event (the dashboard shows them)", async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', HARD_LIMIT_APP, '--pool', 'process', '-c', '1', '-E'], env);
    const events: CeleryEvent[] = [];
    const stop = await listenEvents(await client.transport(), (e) => events.push(e), 'task.succeeded');
    const r = await client.sendTask<number>('tasks.logged', [7]);
    expect(await r.get({ timeout: 20_000 })).toBe(7);
    const done = await waitFor(() => events.find((e) => e.uuid === r.id), 'task-succeeded');
    await stop();
    expect((done.logs as { level: string; msg: string }[]).map((l) => [l.level, l.msg.replace(/\d+/g, 'N')])).toEqual([
      ['info', 'child N says N'],
      ['error', 'and an error line'],
    ]);
  });

  it('a crashing child is replaced, its task redelivered, and a poison message dead-lettered after maxDeliveries (T07 at CI size)', async () => {
    const { env, client, effects } = world(kind, { FIXTURE_MAX_DELIVERIES: '3' });
    const w = await startWorker(['-A', HARD_LIMIT_APP, '--pool', 'process', '-c', '2'], env);
    const poison = await client.sendTask('tasks.crash', []);
    const normal = [];
    for (let i = 0; i < 20; i++) normal.push(await client.sendTask<number>('tasks.pid', []));
    for (const r of normal) expect(typeof (await r.get({ timeout: 20_000 }))).toBe('number');
    const err = (await poison.get({ timeout: 20_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('WorkerLostError');
    expect(err.excMessage).toMatch(/delivered 3 times without finishing/);
    // The FAILURE is stored first, then the message moves to the dead-letter store: wait for the second step.
    const transport = await client.transport();
    const dead = await waitFor(async () => {
      const list = await transport.listDeadLetters();
      return list.length ? list : undefined;
    }, 'the poison message dead-lettered');
    expect(dead).toEqual([expect.objectContaining({ id: poison.id, reason: 'WORKER_LOST', deliveryCount: 4 })]);
    expect(w.proc.exitCode).toBeNull();
    // Redelivery after a crash backs off (1 s, then 2 s): a crash loop never spins.
    const crashes = readEffects(effects).filter((e) => e.kind === 'crash');
    expect(crashes).toHaveLength(3);
    expect(crashes[1]!.t - crashes[0]!.t).toBeGreaterThanOrEqual(1000);
    expect(crashes[2]!.t - crashes[1]!.t).toBeGreaterThanOrEqual(2000);
  });

  it('a hard time limit kills the child: FAILURE TimeLimitExceeded, and the pool keeps serving', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', HARD_LIMIT_APP, '--pool', 'process', '-c', '1'], env);
    const r = await client.sendTask('tasks.hang', []);
    const err = (await r.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TimeLimitExceeded');
    expect(err.code).toBe(ErrorCodes.TIME_LIMIT);
    expect(typeof (await (await client.sendTask<number>('tasks.pid', [])).get({ timeout: 10_000 }))).toBe('number');
  });

  it('revoke with terminate kills a child stuck in a CPU loop', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', HARD_LIMIT_APP, '--pool', 'process', '-c', '1'], env);
    const r = await client.sendTask('tasks.spin', []);
    await waitFor(async () => (await (await client.transport()).length('celery')) === 0, 'spin claimed');
    await r.revoke({ terminate: true });
    const err = (await r.get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TaskRevokedError');
    expect(typeof (await (await client.sendTask<number>('tasks.pid', [])).get({ timeout: 10_000 }))).toBe('number');
  });

  it('children are recycled past a memory ceiling', async () => {
    const { env, client } = world(kind);
    // 1 MB is below any Node process: every child is replaced after each task.
    await startWorker(['-A', HARD_LIMIT_APP, '--pool', 'process', '-c', '1', '--max-memory-per-child', '1'], env);
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) pids.push(await (await client.sendTask<number>('tasks.pid', [])).get({ timeout: 10_000 }));
    expect(new Set(pids).size).toBe(3);
  });

  it('children are recycled after maxTasksPerChild', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', HARD_LIMIT_APP, '--pool', 'process', '-c', '1', '--max-tasks-per-child', '2'], env);
    const pids: number[] = [];
    for (let i = 0; i < 6; i++) pids.push(await (await client.sendTask<number>('tasks.pid', [])).get({ timeout: 10_000 }));
    expect(new Set(pids).size).toBe(3);
    expect(pids[0]).toBe(pids[1]);
    expect(pids[1]).not.toBe(pids[2]);
  });

  it('the async pool refuses a module with hard time limits, at start, with a named error', async () => {
    const { env } = world(kind);
    const w = celeriac(['worker', '-A', HARD_LIMIT_APP], env);
    expect(await w.exited).toBe(2);
    expect(w.output()).toMatch(/CAPABILITY_MISSING: The async pool cannot enforce a hard timeLimit \(tasks: .*tasks\.hang/);
  });
});
