import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, FIXTURE_APP, startWorker, type Spawned } from '../helpers/processes.js';
import { startPythonWorker } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { freePort, startRedis, type RedisServer } from '../servers/redis.js';

/**
 * `celeriac dashboard` as a real process, asked through its JSON API, watching
 * real celeriac workers and a Python Celery worker on Redis and on RabbitMQ:
 * the history (events and the result backend), filters and their errors, the
 * actions, authentication and CSRF, a broker outage, and a restart.
 */
const dir = tempDir('celeriac-dashboard-');
const PASSWORD = 'dash-s3cret-pw';
let n = 0;

const apps: CeleriacApp[] = [];
const redisServers: RedisServer[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  for (const r of redisServers.splice(0)) await r.stop();
});

/** A client app that also sends task-sent events (a task whose worker sends none is still in the history). */
function client(broker: string, backend: string): CeleriacApp {
  const app = createApp({ name: 'dash-client', broker, backend, sendSentEvent: true });
  apps.push(app);
  return app;
}

interface Dashboard {
  readonly proc: Spawned;
  readonly base: string;
  readonly token: string | null;
  get<T = unknown>(path: string, headers?: Record<string, string>): Promise<{ status: number; body: T; text: string }>;
  post<T = unknown>(path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; text: string }>;
}

/** Start `celeriac dashboard` and wait for its one ready line; requests carry the printed token as a bearer unless told otherwise. */
async function dashboard(args: string[], env: Record<string, string> = {}): Promise<Dashboard> {
  const proc = celeriac(['dashboard', '--port', String(await freePort()), ...args], env);
  await Promise.race([
    proc.waitForOutput(/dashboard listening on \S+/, 30_000),
    proc.exited.then((code) => {
      throw new Error(`dashboard exited (${code}) before ready:\n${proc.output()}`);
    }),
  ]);
  const url = new URL(/dashboard listening on (\S+)/.exec(proc.output())![1]!);
  const token = url.searchParams.get('token');
  const auth = (headers: Record<string, string> = {}) => ('authorization' in headers || headers.cookie || !token ? headers : { authorization: `Bearer ${token}`, ...headers });
  const call = async <T>(method: string, path: string, body: unknown, headers: Record<string, string> | undefined) => {
    const res = await fetch(`${url.origin}${path}`, { method, headers: { 'content-type': 'application/json', ...auth(headers) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // An HTML page: the text is the body.
    }
    return { status: res.status, body: parsed as T, text };
  };
  return {
    proc,
    base: url.origin,
    token,
    get: (path, headers) => call('GET', path, undefined, headers),
    post: (path, body, headers) => call('POST', path, body ?? {}, headers),
  };
}

interface Task {
  id: string;
  name: string | null;
  state: string;
  worker: string | null;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  timeline?: { type: string }[];
}
interface Page {
  tasks: Task[];
  total: number;
}
interface WorkerView {
  hostname: string;
  state: string;
  heartbeatAgoS: number | null;
  queues: string[];
  registered: string[];
  pool: string | null;
  concurrency: number | null;
}

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

describe.each(['redis', 'amqp'] as const)('celeriac dashboard over %s', (kind) => {
  it('lists celeriac and Python workers and their tasks with final states; filters, detail with timeline and traceback, 404, 400; no password in any response', async () => {
    let broker: string;
    let backend: string;
    let secret: string;
    if (kind === 'redis') {
      ({ url: broker } = await passwordRedis());
      backend = broker;
      secret = PASSWORD;
    } else {
      broker = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `dash-${process.pid}-${++n}`);
      backend = await sharedRedis();
      secret = 'guest:guest';
    }
    const env = { CELERIAC_BROKER_URL: broker, CELERIAC_RESULT_BACKEND: backend, CELERY_BROKER_URL: broker, CELERY_RESULT_BACKEND: backend };
    const d = await dashboard(['--history', join(dir, `list-${kind}.db`)], env);
    // Started without -E: the dashboard's enable_events makes it report anyway (as Flower does).
    await startWorker(['-A', FIXTURE_APP, '-n', `dash@${kind}`, '-c', '4'], env);
    // A Python Celery worker without events or heartbeats: seen through control replies and the result backend.
    await startPythonWorker(env, 'py');
    const workers = await waitFor(async () => {
      const list = (await d.get<WorkerView[]>('/api/workers')).body;
      const ours = list.find((w) => w.hostname === `dash@${kind}`);
      const py = list.find((w) => w.hostname.startsWith('celery@'));
      return ours?.heartbeatAgoS !== null && ours?.state === 'running' && py?.state === 'running' && py.registered.length > 0 ? { ours: ours, py } : undefined;
    }, 'both workers listed, ours sending heartbeats', 30_000, 200);
    expect(workers.ours.queues).toEqual(['celery']);
    expect(workers.ours.registered).toContain('tasks.add');
    expect(workers.py.queues).toEqual(['py']);
    expect(workers.py.registered).toContain('tasks.broken_task');
    expect(workers.py.concurrency).toBe(1);

    const app = client(broker, backend);
    const add = await app.sendTask('tasks.add', [2, 3]);
    const flaky = await app.sendTask('tasks.flaky', [9]);
    const pyAdd = await app.sendTask('tasks.add', [40, 2], {}, { queue: 'py' });
    const pyBroken = await app.sendTask('tasks.broken_task', [], {}, { queue: 'py' });

    const done = await taskIn(d, add.id, ['SUCCESS']);
    expect(done).toMatchObject({ name: 'tasks.add', result: '5', worker: `dash@${kind}` });
    const failed = await taskIn(d, flaky.id, ['FAILURE']);
    expect(failed.exception).toContain('attempt 4 failed');
    // The Python tasks' final states come from the result backend (that worker sends no events).
    expect(await taskIn(d, pyAdd.id, ['SUCCESS'])).toMatchObject({ name: 'tasks.add', result: '42' });
    const pyFailed = await taskIn(d, pyBroken.id, ['FAILURE']);
    expect(pyFailed.exception).toBe("Exception('failed')");
    expect(pyFailed.traceback).toMatch(/Traceback \(most recent call last\)[\s\S]*Exception: failed/);

    // Detail: the celeriac failure's timeline from its events, and its traceback.
    const detail = (await d.get<Task>(`/api/tasks/${flaky.id}`)).body;
    expect(detail.timeline!.map((e) => e.type)).toEqual(expect.arrayContaining(['task-sent', 'task-received', 'task-started', 'task-retried', 'task-failed']));
    expect(detail.traceback).toContain('attempt 4 failed');

    // Filters.
    const byName = (await d.get<Page>('/api/tasks?name=tasks.broken_task')).body;
    expect(byName.tasks.map((t) => t.id)).toEqual([pyBroken.id]);
    const failures = (await d.get<Page>('/api/tasks?state=FAILURE&sort=name&order=asc')).body;
    expect(failures.tasks.map((t) => t.id)).toEqual([pyBroken.id, flaky.id]);
    const adds = (await d.get<Page>('/api/tasks?name=tasks.a*&state=success')).body;
    expect(adds.tasks.map((t) => t.id).sort()).toEqual([add.id, pyAdd.id].sort());
    expect((await d.get<Page>(`/api/tasks?worker=dash@${kind}&state=SUCCESS`)).body.tasks.map((t) => t.id)).toEqual([add.id]);
    expect((await d.get<Page>(`/api/tasks?id=${pyAdd.id.slice(0, 8)}`)).body.tasks.map((t) => t.id)).toEqual([pyAdd.id]);
    expect((await d.get<Page>('/api/tasks?text=attempt 4')).body.tasks.map((t) => t.id)).toEqual([flaky.id]);
    const paged = (await d.get<Page>('/api/tasks?limit=1&offset=1')).body;
    expect(paged.tasks).toHaveLength(1);
    expect(paged.total).toBe(4);

    // Bad input.
    const unknown = await d.get<{ error: { code: string; message: string } }>('/api/tasks/no-such-task-id');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('TASK_UNKNOWN');
    const badState = await d.get<{ error: { code: string; message: string } }>('/api/tasks?state=DONE');
    expect(badState.status).toBe(400);
    expect(badState.body.error).toMatchObject({ code: 'QUERY_INVALID', message: expect.stringContaining('state') });
    const badLimit = await d.get<{ error: { code: string; message: string } }>('/api/tasks?limit=0');
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.message).toMatch(/^limit: /);
    expect((await d.get('/api/throughput?bucket=5')).status).toBe(400);
    const page404 = await d.get('/no/such/page');
    expect(page404.status).toBe(404);
    expect(page404.text).toContain('<html');

    // Every read, and the live stream's first message: the broker URL is redacted, the password is nowhere.
    const reads = ['/api/overview', '/api/tasks', `/api/tasks/${pyBroken.id}`, '/api/throughput?since=1h&bucket=1m', '/api/workers', '/api/queues', '/api/dead-letters', '/api/schedules', '/api/broker'];
    for (const path of reads) {
      const r = await d.get(path);
      expect(r.status, `${path}: ${r.text}`).toBe(200);
      expect(r.text, path).not.toContain(secret);
    }
    const broker404 = (await d.get<{ url: string; reachable: boolean }>('/api/broker')).body;
    expect(broker404.reachable).toBe(true);
    expect(broker404.url).toContain('***');
    const overview = (await d.get<{ workersOnline: number; stateCounts: Record<string, number> }>('/api/overview')).body;
    expect(overview.workersOnline).toBe(2);
    expect(overview.stateCounts).toMatchObject({ SUCCESS: 2, FAILURE: 2 });
    const stream = await fetch(`${d.base}/api/stream`, { headers: { authorization: `Bearer ${d.token}` } });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const reader = stream.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/event: broker\ndata: \{"kind":"broker"/);
    expect(first).not.toContain(secret);
    await reader.cancel();
    expect(d.proc.output()).not.toContain(secret);
  }, 120_000);
});
