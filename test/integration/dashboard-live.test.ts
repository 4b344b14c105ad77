import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, FIXTURE_APP, ROOT, startWorker, type Spawned } from '../helpers/processes.js';
import { PY_DIR, PYTHON } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../servers/redis.js';

/**
 * The dashboard's live side, as a real process on Redis: the Server-Sent
 * Events stream (task states as they happen, a worker going offline after it
 * was killed), terminating a running task, re-sending a dead letter, and
 * enabling and disabling beat entries. (dashboard-api.test.ts covers the reads,
 * the other actions, authentication, an outage and a restart.)
 */
const dir = tempDir('celeriac-dashboard-live-');
let n = 0;
const apps: CeleriacApp[] = [];
const pythons: ChildProcess[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  for (const p of pythons.splice(0)) {
    p.kill('SIGKILL');
    if (p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
  }
});

/**
 * A Python Celery worker as most run it: heartbeats on, task events off (no -E) — what Flower
 * meets in the field. (The shared helper starts one without heartbeats, which can never send events.)
 */
async function pythonWorkerWithoutEvents(env: Record<string, string>, name: string, queue: string): Promise<void> {
  const proc = spawn(PYTHON, ['-m', 'celery', '-A', 'tasks', 'worker', '-P', 'solo', '-Q', queue, '-n', name, '--without-gossip', '--without-mingle', '-l', 'info'], {
    cwd: PY_DIR,
    env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pythons.push(proc);
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor(() => /\S+@\S+ ready\./.test(out) || proc.exitCode !== null, 'python worker ready', 30_000, 50);
  if (proc.exitCode !== null) throw new Error(`python worker exited:\n${out}`);
}

async function world(): Promise<{ url: string; env: Record<string, string>; app: CeleriacApp }> {
  const url = inject('redisUrl').replace(/\/0$/, `/${(++n % 7) + 8}`);
  const raw = new Redis(url);
  await raw.flushdb();
  await raw.quit();
  const app = createApp({ name: 'dash-live', broker: url, backend: url, sendSentEvent: true });
  apps.push(app);
  return { url, env: { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url }, app };
}

interface Dashboard {
  readonly proc: Spawned;
  readonly base: string;
  readonly auth: Record<string, string>;
  json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

async function dashboard(args: string[], env: Record<string, string>): Promise<Dashboard> {
  const proc = celeriac(['dashboard', '--port', String(await freePort()), ...args], env);
  await Promise.race([
    proc.waitForOutput(/dashboard listening on \S+/, 30_000),
    proc.exited.then((code) => {
      throw new Error(`dashboard exited (${code}) before ready:\n${proc.output()}`);
    }),
  ]);
  const url = new URL(/dashboard listening on (\S+)/.exec(proc.output())![1]!);
  const auth = { authorization: `Bearer ${url.searchParams.get('token')}` };
  return {
    proc,
    base: url.origin,
    auth,
    json: async <T>(method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url.origin}${path}`, { method, headers: { ...auth, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}) });
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}

interface Task {
  id: string;
  state: string;
  result: string | null;
}

const taskIn = (d: Dashboard, id: string, states: string[]) =>
  waitFor(async () => {
    const r = await d.json<Task>('GET', `/api/tasks/${id}`);
    return r.status === 200 && states.includes(r.body.state) ? r.body : undefined;
  }, `task ${id} in ${states.join('/')}`, 30_000, 200);

interface Message {
  event: string;
  data: { kind: string; id?: string; state?: string; hostname?: string };
}

/** A reader of `/api/stream`: every message so far, parsed; `until` polls them. */
async function stream(d: Dashboard): Promise<{ messages: Message[]; until(pred: (m: Message) => boolean, what: string, timeoutMs?: number): Promise<Message>; close(): Promise<void> }> {
  const res = await fetch(`${d.base}/api/stream`, { headers: d.auth });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const state = { messages: [] as Message[] };
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) state.messages.push({ event, data: JSON.parse(data) as Message['data'] });
      }
    }
  })();
  return {
    messages: state.messages,
    until: (pred, what, timeoutMs = 20_000) => waitFor(() => state.messages.find(pred), what, timeoutMs, 50),
    close: async () => {
      await reader.cancel();
      await pump;
    },
  };
}

describe('celeriac dashboard live (Redis)', () => {
  it('the stream carries each task state as it happens and a killed worker going offline; terminate ends a running task', async () => {
    const { env, app } = await world();
    const d = await dashboard(['--history', join(dir, 'live.db')], env);
    const worker = await startWorker(['-A', FIXTURE_APP, '-n', 'live@w1', '-E'], env);
    const live = await stream(d);
    await live.until((m) => m.event === 'broker', 'the broker status first');
    expect(live.messages[0]).toMatchObject({ event: 'broker', data: { kind: 'broker' } });
    await live.until((m) => m.event === 'worker' && m.data.hostname === 'live@w1' && m.data.state === 'running', 'live@w1 running');

    const add = await app.sendTask('tasks.add', [5, 6]);
    await live.until((m) => m.event === 'task' && m.data.id === add.id && m.data.state === 'SUCCESS', 'the task SUCCESS on the stream');
    await live.until((m) => m.event === 'queues', 'a queue sample on the stream');

    // Terminate a task that is running: the run is aborted and the task ends REVOKED.
    const long = await app.sendTask('tasks.sleepy', [60_000, 'long']);
    await taskIn(d, long.id, ['STARTED']);
    // Delivered and not acked: counted from the worker's `active` reply, per queue.
    await waitFor(async () => {
      const view = (await d.json<{ queues: { name: string; ready: number; unacked: number | null }[] }>('GET', '/api/queues')).body;
      return view.queues.find((q) => q.name === 'celery')?.unacked === 1;
    }, 'one unacked task in celery', 15_000, 200);
    const r = await d.json<{ ok: boolean; message: string }>('POST', '/api/tasks/revoke', { ids: [long.id], terminate: true, signal: 'SIGTERM' });
    expect(r.body).toMatchObject({ ok: true, message: 'terminate (SIGTERM) sent for 1 task(s)' });
    await taskIn(d, long.id, ['REVOKED']);
    await live.until((m) => m.event === 'task' && m.data.id === long.id && m.data.state === 'REVOKED', 'REVOKED on the stream');

    // Killed without a goodbye: offline once its heartbeats and replies stop.
    worker.proc.kill('SIGKILL');
    await worker.exited;
    await live.until((m) => m.event === 'worker' && m.data.hostname === 'live@w1' && m.data.state === 'offline', 'live@w1 offline on the stream', 30_000);
    const workers = (await d.json<{ hostname: string; state: string }[]>('GET', '/api/workers')).body;
    expect(workers.find((w) => w.hostname === 'live@w1')?.state).toBe('offline');
    await live.close();
  }, 90_000);

  it('re-send: a dead letter from its wire message, a task seen only through events from its reprs read back exactly; beat entries are listed, disabled and enabled', async () => {
    const { env, app } = await world();
    const periodic = join(ROOT, 'test', 'fixtures', 'apps', 'periodic.ts');
    await startWorker(['-A', FIXTURE_APP, '-n', 'live@w2', '-E'], env);
    // Refused (a string where a number is wanted) before the dashboard ran: the history never saw it, the dead-letter store has its message.
    const strict = await app.sendTask('tasks.strict', ['4']);
    await waitFor(async () => (await (await app.transport()).deadLetterCount()) === 1, 'dead-lettered', 20_000, 100);
    const d = await dashboard(['-A', periodic, '--history', join(dir, 'beat.db')], env);
    expect((await d.json('GET', `/api/tasks/${strict.id}`)).status).toBe(404);
    const resent = await d.json<{ id: string }>('POST', `/api/tasks/${strict.id}/resend`);
    expect(resent.status).toBe(200);
    // The same arguments exactly, so refused again the same way: a new dead letter under the new id.
    const again = await waitFor(async () => (await d.json<{ items: { id: string; reason: string; args: string; taskName: string }[] }>('GET', '/api/dead-letters')).body.items.find((i) => i.id === resent.body.id), 'the re-sent task refused the same way', 20_000, 200);
    expect(again).toMatchObject({ taskName: 'tasks.strict', args: "('4',)", reason: 'TASK_ARGS_INVALID' });

    // Seen only through events, its arguments are reprs: read back as Python literals, exactly (quotes, nesting, None, floats).
    const tricky = [{ quote: "it's \"x\"", list: [1, 2.5, null, true, false], nested: { 'back\\slash': 'line\nbreak' } }, 'é'];
    const probe = await app.sendTask('tasks.probe', tricky);
    const seen = await taskIn(d, probe.id, ['SUCCESS']);
    const resentProbe = await d.json<{ id: string }>('POST', `/api/tasks/${probe.id}/resend`);
    const copy = await taskIn(d, resentProbe.body.id, ['SUCCESS']);
    expect((copy as Task & { args: string }).args).toBe((seen as Task & { args: string }).args);

    const listed = (await d.json<{ name: string; task: string; schedule: string; enabled: boolean }[]>('GET', '/api/schedules')).body;
    expect(listed).toEqual([expect.objectContaining({ name: 'tick', task: 'tasks.tick', schedule: 'every 1s', enabled: true })]);
    expect((await d.json<{ enabled: boolean }>('POST', '/api/schedules/tick/disable')).body).toMatchObject({ name: 'tick', enabled: false });
    expect((await d.json<{ enabled: boolean }[]>('GET', '/api/schedules')).body[0]!.enabled).toBe(false);
    expect((await d.json<{ enabled: boolean }>('POST', '/api/schedules/tick/enable')).body).toMatchObject({ name: 'tick', enabled: true });
  }, 90_000);

  it('a Python Celery worker started without -E: enable_events makes it report, so its tasks have their timeline and traceback from its events', async () => {
    const { env, app } = await world();
    const d = await dashboard(['--history', join(dir, 'python.db')], env);
    await pythonWorkerWithoutEvents({ ...env, CELERY_BROKER_URL: env.CELERIAC_BROKER_URL!, CELERY_RESULT_BACKEND: env.CELERIAC_RESULT_BACKEND! }, 'pyev@dash', 'pyev');
    const py = await waitFor(async () => {
      const list = (await d.json<{ hostname: string; state: string; software: string | null; heartbeatAgoS: number | null }[]>('GET', '/api/workers')).body;
      return list.find((w) => w.hostname === 'pyev@dash' && w.state === 'running' && w.heartbeatAgoS !== null);
    }, 'the Python worker with heartbeats', 30_000, 200);
    expect(py.software).toMatch(/^py-celery \d/);
    // Events are switched on by the dashboard when the worker comes online: its tasks' events follow.
    const broken = await waitFor(async () => {
      const sent = await app.sendTask('tasks.broken_task', [], {}, { queue: 'pyev' });
      const t = await taskIn(d, sent.id, ['FAILURE']);
      const detail = (await d.json<Task & { worker: string; traceback: string; timeline: { type: string; hostname: string }[] }>('GET', `/api/tasks/${t.id}`)).body;
      return detail.timeline.some((e) => e.type === 'task-failed') ? detail : undefined;
    }, 'a Python task seen through its own events', 30_000, 0);
    expect(broken.worker).toBe('pyev@dash');
    expect(broken.timeline.filter((e) => e.hostname === 'pyev@dash').map((e) => e.type)).toEqual(expect.arrayContaining(['task-received', 'task-started', 'task-failed']));
    expect(broken.traceback).toMatch(/Exception: failed/);
  }, 90_000);
});
