import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { celeriac, FIXTURE_APP, startWorker } from '../helpers/processes.js';
import { startPythonWorker } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { freePort, startRedis, type RedisServer } from '../servers/redis.js';
import { client, dashboard, type Dashboard, type Page, type Task } from '../helpers/dashboard.js';

/**
 * `celeriac dashboard` as a real process, asked through its JSON API, watching
 * real celeriac workers and a Python Celery worker on Redis and on RabbitMQ:
 * the history (events and the result backend), filters and their errors, the
 * actions, authentication and CSRF. (A broker outage and a restart:
 * dashboard-resilience.test.ts; the live stream: dashboard-live.test.ts.)
 */
const dir = tempDir('celeriac-dashboard-');
const PASSWORD = 'dash-s3cret-pw';
let n = 0;

const redisServers: RedisServer[] = [];
afterEach(async () => {
  for (const r of redisServers.splice(0)) await r.stop();
});

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
    expect(detail.timeline!.map((e) => e.type), JSON.stringify(detail.timeline)).toEqual(expect.arrayContaining(['task-sent', 'task-received', 'task-started', 'task-retried', 'task-failed']));
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

interface ErrorBody {
  error: { code: string; message: string };
}

describe.each(['redis', 'amqp'] as const)('celeriac dashboard actions over %s', (kind) => {
  it('revoke of a countdown task ends REVOKED, resend, dead letters requeued and discarded, worker actions and WORKER_NO_REPLY', async () => {
    const backend = await sharedRedis();
    const url = kind === 'redis' ? backend : await freshVhost(inject('amqpUrl'), inject('amqpNode'), `dash-act-${process.pid}-${++n}`);
    const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend };
    const d = await dashboard(['--history', join(dir, `actions-${kind}.db`)], env);
    const old = await startWorker(['-A', FIXTURE_APP, '-n', 'act@old', '-E'], env);
    const app = client(url, backend);

    // Revoke a task still waiting for its countdown: when it comes due, the worker discards it.
    const later = await app.sendTask('tasks.add', [1, 1], {}, { countdown: 3000 });
    // Waiting broker-side (Redis) or held by the worker until due (RabbitMQ): not started either way.
    await taskIn(d, later.id, ['SENT', 'RECEIVED']);
    const revoked = await d.post<{ ok: boolean; message: string }>('/api/tasks/revoke', { ids: [later.id] });
    expect(revoked.status).toBe(200);
    expect(revoked.body.ok).toBe(true);
    await taskIn(d, later.id, ['REVOKED']);
    expect((await d.post<ErrorBody>('/api/tasks/revoke', { ids: [] })).body.error.code).toBe('ARGUMENT_INVALID');
    expect((await d.post<ErrorBody>('/api/tasks/revoke', { ids: ['x'], terminate: true, signal: 'SIGNOPE' })).status).toBe(400);

    // Resend: the same name, arguments and queue, as a new task (its arguments read back from their repr).
    const add = await app.sendTask('tasks.add', [20, 22]);
    await taskIn(d, add.id, ['SUCCESS']);
    const resent = await d.post<{ id: string }>(`/api/tasks/${add.id}/resend`);
    expect(resent.status).toBe(200);
    expect(resent.body.id).not.toBe(add.id);
    expect(await taskIn(d, resent.body.id, ['SUCCESS'])).toMatchObject({ name: 'tasks.add', result: '42' });
    expect((await d.post<ErrorBody>('/api/tasks/no-such-id/resend')).body.error.code).toBe('TASK_UNKNOWN');

    // Dead letters: a task no worker knows yet, twice.
    const late = await app.sendTask('tasks.late', [4]);
    const discard = await app.sendTask('tasks.late', [5]);
    const letters = await waitFor(async () => {
      const r = await d.get<{ total: number; items: { id: string; reason: string; taskName: string; args: string }[] }>('/api/dead-letters');
      return r.body.total === 2 ? r.body : undefined;
    }, 'two dead letters', 20_000, 200);
    expect(letters.items.map((i) => [i.id, i.reason, i.taskName, i.args])).toEqual([
      [late.id, 'TASK_UNKNOWN', 'tasks.late', '(4,)'],
      [discard.id, 'TASK_UNKNOWN', 'tasks.late', '(5,)'],
    ]);
    await taskIn(d, late.id, ['REJECTED']);
    // The fix is deployed: a worker that knows tasks.late replaces the old one.
    old.proc.kill('SIGTERM');
    await old.exited;
    await startWorker(['-A', FIXTURE_APP, '-n', 'act@new', '-E'], { ...env, FIXTURE_WITH_LATE: '1' });
    expect((await d.post('/api/dead-letters/requeue', { ids: [late.id] })).body).toEqual({ requeued: 1 });
    expect(await taskIn(d, late.id, ['SUCCESS'])).toMatchObject({ result: '40', worker: 'act@new' });
    expect((await d.post('/api/dead-letters/discard', { ids: [discard.id, 'gone'] })).body).toEqual({ discarded: 1 });
    expect((await d.get<{ total: number }>('/api/dead-letters')).body.total).toBe(0);
    expect((await d.post('/api/dead-letters/requeue', { ids: ['gone'] })).body).toEqual({ requeued: 0 });
    expect((await d.post<ErrorBody>('/api/dead-letters/requeue', {})).status).toBe(400);

    // Worker actions: one that answers, one that is not there.
    const ghost = await d.post<ErrorBody & { result: { ok: boolean } }>('/api/workers/ghost@nowhere/suspend');
    expect(ghost.status).toBe(504);
    expect(ghost.body.error.code).toBe('WORKER_NO_REPLY');
    expect(ghost.body.error.message).toContain('ghost@nowhere did not answer');
    expect(ghost.body.result.ok).toBe(false);
    expect((await d.post<{ ok: boolean }>('/api/workers/act@new/suspend')).body.ok).toBe(true);
    await waitFor(async () => (await d.get<WorkerView[]>('/api/workers')).body.find((w) => w.hostname === 'act@new')?.state === 'suspended', 'suspended', 10_000, 200);
    expect((await d.post<{ ok: boolean }>('/api/workers/act@new/resume')).body.ok).toBe(true);
    const rate = await d.post<{ ok: boolean; message: string }>('/api/workers/act@new/rate_limit', { args: { task_name: 'tasks.add', rate_limit: '100/s' } });
    expect(rate.body).toMatchObject({ ok: true, message: 'new rate limit set successfully' });
    expect((await d.post<{ ok: boolean; message: string }>('/api/workers/act@new/rate_limit', { args: { task_name: 'tasks.nope', rate_limit: '1/s' } })).body).toMatchObject({ ok: false, message: 'unknown task' });
    expect((await d.post<ErrorBody>('/api/workers/act@new/reboot')).status).toBe(400);
    expect((await d.post<ErrorBody>('/api/workers/act@new/pool_grow', { args: { n: -1 } })).status).toBe(400);

    // Purge, and schedules (none defined on a bare -b app).
    await app.sendTask('tasks.add', [0, 0], {}, { queue: 'parked' });
    await waitFor(async () => (await (await app.transport()).length('parked')) === 1, 'a message parked');
    expect((await d.post('/api/queues/parked/purge')).body).toEqual({ purged: 1 });
    expect((await d.get('/api/schedules')).body).toEqual([]);
    const noEntry = await d.post<ErrorBody>('/api/schedules/nightly/enable');
    expect(noEntry.status).toBe(404);
    expect(noEntry.body.error.code).toBe('BEAT_ENTRY_UNKNOWN');
  }, 120_000);
});

describe('celeriac dashboard authentication (Redis)', () => {
  it('actions need a session and its CSRF token; the printed ?token= URL sets it; a token or basic auth makes reads need it too; 0.0.0.0 without either refuses to start', async () => {
    const url = await sharedRedis();
    const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url };
    const d = await dashboard(['--history', join(dir, 'auth.db')], env);
    expect(d.token).toMatch(/^[0-9a-f]{48}$/);

    // Reads on loopback are open; an action without credentials is refused.
    expect((await d.get('/api/overview', { authorization: '' })).status).toBe(200);
    const anonymous = await d.post<ErrorBody>('/api/queues/celery/purge', {}, { authorization: '' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('AUTH_REQUIRED');
    expect((await d.post('/api/queues/celery/purge', {}, { authorization: 'Bearer wrong-token' })).status).toBe(401);

    // The printed URL: a session cookie (HttpOnly, SameSite=Strict), then the clean URL.
    expect((await fetch(`${d.base}/?token=wrong`, { redirect: 'manual' })).status).toBe(401);
    const opened = await fetch(`${d.base}/?token=${d.token}`, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/');
    const setCookie = opened.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    const session = (await d.get<{ authenticated: boolean; csrfToken: string }>('/api/session', { cookie })).body;
    expect(session.authenticated).toBe(true);
    expect(session.csrfToken.length).toBeGreaterThan(20);
    expect((await d.get<{ authenticated: boolean }>('/api/session', { authorization: '' })).body.authenticated).toBe(false);

    const noCsrf = await d.post<ErrorBody>('/api/queues/celery/purge', {}, { cookie });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.error.message).toContain('X-CSRF-Token');
    expect((await d.post('/api/queues/celery/purge', {}, { cookie, 'x-csrf-token': `${session.csrfToken}x` })).status).toBe(403);
    const crossSite = await d.post<ErrorBody>('/api/queues/celery/purge', {}, { cookie, 'x-csrf-token': session.csrfToken, origin: 'http://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(crossSite.body.error.message).toContain('cross-origin');
    const allowed = await d.post('/api/queues/celery/purge', {}, { cookie, 'x-csrf-token': session.csrfToken, origin: d.base });
    expect(allowed.status).toBe(200);
    expect(allowed.body).toEqual({ purged: 0 });
    // A bearer token needs no CSRF token (a browser never sends it on its own).
    expect((await d.post('/api/queues/celery/purge')).status).toBe(200);

    // Another address without authentication: refused before anything is opened.
    const open = celeriac(['dashboard', '--host', '0.0.0.0', '--port', String(await freePort())], env);
    expect(await open.exited).toBe(2);
    expect(open.output()).toMatch(/refusing to bind the dashboard to 0\.0\.0\.0 without authentication.*--auth-token/);

    // A configured token (from the environment) and basic auth: reads need them too, and the token is not printed.
    const token = 'configured-token-0123456789';
    const guarded = await dashboard(['--history', join(dir, 'auth-guarded.db'), '--basic-auth', 'ops:pw-123'], { ...env, CELERIAC_DASHBOARD_TOKEN: token });
    expect(guarded.token).toBeNull();
    expect(guarded.proc.output()).not.toContain(token);
    const refused = await fetch(`${guarded.base}/api/overview`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect((await guarded.get('/api/overview', { authorization: `Bearer ${token}` })).status).toBe(200);
    const basic = { authorization: `Basic ${Buffer.from('ops:pw-123').toString('base64')}` };
    expect((await guarded.get('/api/overview', { authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` })).status).toBe(401);
    const basicSession = (await guarded.get<{ csrfToken: string }>('/api/session', basic)).body;
    expect((await guarded.post('/api/queues/celery/purge', {}, basic)).status).toBe(403);
    expect((await guarded.post('/api/queues/celery/purge', {}, { ...basic, 'x-csrf-token': basicSession.csrfToken })).status).toBe(200);
  }, 90_000);
});
