import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { FIXTURE_APP, startWorker } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { client, dashboard, type Dashboard, type Page, type Task } from '../helpers/dashboard.js';

/**
 * `celeriac dashboard` keeps serving what it can when the world around it
 * fails: through a Redis outage (its own redis-server, killed and restarted)
 * and across a restart of the dashboard itself (its SQLite history file).
 * (dashboard-api.test.ts has the API itself, dashboard-live.test.ts the live side.)
 */
const dir = tempDir('celeriac-dashboard-resilience-');
const PASSWORD = 'dash-s3cret-pw';
let n = 0;

const redisServers: RedisServer[] = [];
afterEach(async () => {
  for (const r of redisServers.splice(0)) await r.stop();
});


/** Wait until the history has the task in one of `states`. */
async function taskIn(d: Dashboard, id: string, states: string[], timeoutMs = 30_000): Promise<Task> {
  return waitFor(async () => {
    const r = await d.get<Task>(`/api/tasks/${id}`);
    return r.status === 200 && states.includes(r.body.state) ? r.body : undefined;
  }, `task ${id} in ${states.join('/')}`, timeoutMs, 200);
}

/** A Redis db of the shared server, emptied, for one test. */
async function sharedRedis(): Promise<string> {
  const url = inject('redisUrl').replace(/\/0$/, `/${(++n % 15) + 1}`);
  const raw = new Redis(url);
  await raw.flushdb();
  await raw.quit();
  return url;
}

/** A private redis-server that needs a password (so a leak would show), as a URL with the password. */
async function passwordRedis(): Promise<{ server: RedisServer; url: string }> {
  const server = await startRedis(['--requirepass', PASSWORD]);
  redisServers.push(server);
  return { server, url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/0` };
}


interface ErrorBody {
  error: { code: string; message: string };
}
interface BrokerStatus {
  url: string;
  reachable: boolean;
  error: string | null;
}

describe('celeriac dashboard through a broker outage and a restart', () => {
  it('Redis down for 10 s: the history still answers, /api/broker says unreachable (no password), and it recovers by itself', async () => {
    const { server, url } = await passwordRedis();
    const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url };
    const d = await dashboard(['--history', join(dir, 'outage.db')], env);
    await startWorker(['-A', FIXTURE_APP, '-n', 'out@w1', '-E'], env);
    const before = await client(url, url).sendTask('tasks.add', [1, 2]);
    await taskIn(d, before.id, ['SUCCESS']);

    await server.kill9();
    const downAt = Date.now();
    const status = await waitFor(async () => {
      const b = (await d.get<BrokerStatus>('/api/broker')).body;
      return b.reachable ? undefined : b;
    }, 'the broker reported unreachable', 20_000, 200);
    expect(status.error).toBeTruthy();
    expect(status.url).toContain('***');
    // Throughout the outage the history answers and broker reads say why they cannot.
    await waitFor(async () => {
      const t = await d.get<Task>(`/api/tasks/${before.id}`);
      expect(t.status).toBe(200);
      expect(t.body.state).toBe('SUCCESS');
      expect((await d.get<Page>('/api/tasks')).body.total).toBe(1);
      expect((await d.get<{ broker: BrokerStatus }>('/api/overview')).body.broker.reachable).toBe(false);
      const queues = await d.get<ErrorBody>('/api/queues');
      expect(queues.status).toBe(503);
      expect(queues.body.error.code).toBe('BROKER_UNAVAILABLE');
      expect(queues.text).not.toContain(PASSWORD);
      return Date.now() - downAt >= 10_000;
    }, 'a 10 s outage', 30_000, 500);
    expect((await d.post<ErrorBody>('/api/queues/celery/purge')).status).toBe(503);

    await server.restart();
    await waitFor(async () => (await d.get<BrokerStatus>('/api/broker')).body.reachable, 'the broker reachable again', 30_000, 200);
    // The event feed came back with it: a task sent now is seen to its end.
    const after = await client(url, url).sendTask('tasks.add', [3, 4]);
    expect(await taskIn(d, after.id, ['SUCCESS'])).toMatchObject({ result: '7', worker: 'out@w1' });
    expect(d.proc.output()).not.toContain(PASSWORD);
  }, 120_000);

  it('the history survives a dashboard restart, and retention applies to it', async () => {
    const url = await sharedRedis();
    const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url };
    const history = join(dir, 'restart.db');
    const first = await dashboard(['--history', history], env);
    await startWorker(['-A', FIXTURE_APP, '-n', 'restart@w1', '-E'], env);
    const app = client(url, url);
    const adds = [await app.sendTask('tasks.add', [1, 1]), await app.sendTask('tasks.add', [2, 2])];
    const flaky = await app.sendTask('tasks.flaky', [9]);
    for (const t of adds) await taskIn(first, t.id, ['SUCCESS']);
    await taskIn(first, flaky.id, ['FAILURE']);

    first.proc.proc.kill('SIGTERM');
    expect(await first.proc.exited).toBe(0);
    const second = await dashboard(['--history', history], env);
    // At once: no event has been received by this process yet.
    const page = (await second.get<Page>('/api/tasks?sort=name&order=asc')).body;
    expect(page.total).toBe(3);
    expect(page.tasks.map((t) => [t.id, t.state])).toEqual([[adds[0]!.id, 'SUCCESS'], [adds[1]!.id, 'SUCCESS'], [flaky.id, 'FAILURE']]);
    const detail = (await second.get<Task>(`/api/tasks/${flaky.id}`)).body;
    expect(detail.traceback).toContain('attempt 4 failed');
    expect(detail.timeline!.map((e) => e.type)).toContain('task-retried');

    second.proc.proc.kill('SIGINT');
    expect(await second.proc.exited).toBe(0);
    const pruned = await dashboard(['--history', history, '--history-max-tasks', '2'], env);
    await waitFor(async () => (await pruned.get<Page>('/api/tasks')).body.total === 2, 'retention down to 2 tasks', 10_000, 200);
  }, 90_000);
});
