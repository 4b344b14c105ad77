import { describe, expect, it } from 'vitest';
import { listenEvents, PIDBOX, PIDBOX_REPLY, type CeleryEvent } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';
import { memoryApp, startInProcessWorker } from '../helpers/in-process.js';

const startWorker = startInProcessWorker;

function setup(label: string) {
  const app = memoryApp(label);
  const add = app.task({ name: 'tasks.add' }, async (x: number, y: number) => x + y);
  const boom = app.task({ name: 'tasks.boom', maxRetries: 0 }, async () => {
    throw new Error('failed');
  });
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const hold = app.task({ name: 'tasks.hold' }, async (label: string) => {
    await gate;
    return label;
  });
  return { app, add, boom, hold, release };
}

describe('remote control (pidbox) through the real worker', () => {
  it('ping reaches every worker; destination and pattern pick some; limit ends collection early', async () => {
    const { app } = setup('ping');
    await startWorker(app, { hostname: 'celeriac@a' });
    await startWorker(app, { hostname: 'celeriac@b' });
    expect(await app.control.ping({ timeout: 300 })).toEqual({ 'celeriac@a': { ok: 'pong' }, 'celeriac@b': { ok: 'pong' } });
    expect(await app.control.ping({ destination: ['celeriac@b'], timeout: 300 })).toEqual({ 'celeriac@b': { ok: 'pong' } });
    expect(Object.keys(await app.control.ping({ pattern: '*@a', timeout: 300 }))).toEqual(['celeriac@a']);
    expect(Object.keys(await app.control.ping({ pattern: '@b$', matcher: 'pcre', timeout: 300 }))).toEqual(['celeriac@b']);
    const started = Date.now();
    const one = await app.control.broadcast('ping', {}, { destination: ['celeriac@a'], timeout: 5000 });
    expect(one).toEqual([{ 'celeriac@a': { ok: 'pong' } }]);
    // The reply limit (one destination) ended the wait long before the 5 s timeout.
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('inspect: registered, active, reserved, query_task, stats, active_queues, revoked, scheduled', async () => {
    const { app, add, hold, release } = setup('inspect');
    await startWorker(app, { hostname: 'celeriac@w', concurrency: 1, prefetch: 2 });
    // Addressed to the one worker: collection ends with its reply instead of waiting out the timeout.
    const only = { destination: ['celeriac@w'] };
    expect((await app.control.inspect('registered', {}, only))['celeriac@w']).toEqual(['tasks.add', 'tasks.boom', 'tasks.hold']);
    expect((await app.control.inspect('registered', { builtins: true }, only))['celeriac@w']).toContain('celery.chord_unlock');
    const running = await hold.delay('first');
    const waiting = await hold.delay('second');
    await waitFor(async () => ((await app.control.inspect('active', {}, only))['celeriac@w'] as unknown[])?.length === 1, 'one active');
    const active = (await app.control.inspect('active', {}, only))['celeriac@w'] as { id: string; name: string; args: string }[];
    expect(active[0]).toMatchObject({ id: running.id, name: 'tasks.hold', args: "('first',)", hostname: 'celeriac@w' });
    const reserved = (await app.control.inspect('reserved', {}, only))['celeriac@w'] as { id: string }[];
    expect(reserved.map((r) => r.id)).toEqual([waiting.id]);
    const query = (await app.control.inspect('query_task', { ids: [running.id, waiting.id, 'nope'] }, only))['celeriac@w'] as Record<string, [string, unknown]>;
    expect(Object.fromEntries(Object.entries(query).map(([id, [state]]) => [id, state]))).toEqual({ [running.id]: 'active', [waiting.id]: 'reserved' });
    expect((await app.control.inspect('scheduled', {}, only))['celeriac@w']).toEqual([]);
    const queues = (await app.control.inspect('active_queues', {}, only))['celeriac@w'] as { name: string }[];
    expect(queues.map((q) => q.name)).toEqual(['celery']);
    release();
    await expect(running.get({ timeout: 3000 })).resolves.toBe('first');
    await expect(waiting.get({ timeout: 3000 })).resolves.toBe('second');
    await (await add.delay(1, 1)).get({ timeout: 3000 });
    const stats = (await app.control.inspect('stats', {}, only))['celeriac@w'] as { total: Record<string, number>; pool: Record<string, unknown>; pid: number };
    expect(stats.total).toEqual({ 'tasks.add': 1, 'tasks.hold': 2 });
    expect(stats.pool['max-concurrency']).toBe(1);
    expect(stats.pid).toBe(process.pid);
    await app.revoke(['rev-1']);
    await waitFor(async () => ((await app.control.inspect('revoked', {}, only))['celeriac@w'] as string[])?.includes('rev-1'), 'revoked listed');
  });

  it('control: rate_limit and time_limit validate; pool_grow/shrink; add/cancel_consumer; suspend/resume; unknown command', async () => {
    const { app, add } = setup('control');
    const worker = await startWorker(app, { hostname: 'celeriac@c', concurrency: 2 });
    const only = { destination: ['celeriac@c'] };
    expect(await app.control.rateLimit('tasks.nope', '1/s', only)).toEqual({ 'celeriac@c': { error: 'unknown task' } });
    expect((await app.control.rateLimit('tasks.add', 'fast', only))['celeriac@c']).toMatchObject({ error: expect.stringContaining('Invalid rate limit') });
    expect(await app.control.rateLimit('tasks.add', '10/s', only)).toEqual({ 'celeriac@c': { ok: 'new rate limit set successfully' } });
    expect(await app.control.timeLimit('tasks.add', { hard: 5 }, only)).toEqual({ 'celeriac@c': { error: 'the async pool cannot enforce a hard time limit' } });
    expect(await app.control.timeLimit('tasks.add', { soft: 5 }, only)).toEqual({ 'celeriac@c': { ok: 'time limits set successfully' } });
    expect(worker.timeLimits.get('tasks.add')).toEqual({ hard: null, soft: 5000 });
    await app.control.inspect('pool_grow', { n: 3 }, only);
    expect(worker.concurrency).toBe(5);
    await app.control.inspect('pool_shrink', { n: 4 }, only);
    expect(worker.concurrency).toBe(1);
    expect(await app.control.inspect('add_consumer', { queue: 'extra' }, only)).toEqual({ 'celeriac@c': { ok: 'add consumer extra' } });
    const extra = await add.applyAsync([2, 3], {}, { queue: 'extra' });
    await expect(extra.get({ timeout: 3000 })).resolves.toBe(5);
    expect(await app.control.inspect('cancel_consumer', { queue: 'extra' }, only)).toEqual({ 'celeriac@c': { ok: 'no longer consuming from extra' } });
    expect(worker.queues).toEqual(['celery']);
    expect(await app.control.inspect('suspend', {}, only)).toEqual({ 'celeriac@c': { ok: 'suspended: not taking new tasks' } });
    const parked = await add.delay(4, 4);
    const transport = await app.transport();
    await waitFor(async () => (await transport.length('celery')) === 1, 'the task waits in its queue while suspended');
    expect(await parked.state()).toBe('PENDING');
    await app.control.inspect('resume', {}, only);
    await expect(parked.get({ timeout: 3000 })).resolves.toBe(8);
    expect(await app.control.inspect('no_such_thing', {}, only)).toEqual({ 'celeriac@c': { error: 'No such command: no_such_thing' } });
    expect(await app.control.inspect('__proto__', {}, only)).toEqual({ 'celeriac@c': { error: 'No such command: __proto__' } });
  });

  it('a command without reply_to runs and is not answered; shutdown asks the process owner', async () => {
    const { app } = setup('cast');
    let asked = 0;
    const worker = await startWorker(app, { hostname: 'celeriac@x', onShutdownRequest: () => asked++ });
    const transport = await app.transport();
    const replies: unknown[] = [];
    const stop = await transport.listen(PIDBOX_REPLY, 'cast', (n) => replies.push(n.payload), { queue: 'cast.reply.celery.pidbox' });
    // A cast (no reply_to), then a call answered to the same reply queue: only the call is answered.
    await transport.notify(PIDBOX, '', { method: 'pool_grow', arguments: { n: 1 }, destination: null }, { headers: { expires: 0 } });
    await transport.notify(PIDBOX, '', { method: 'ping', arguments: {}, destination: null, ticket: 't2', reply_to: { exchange: PIDBOX_REPLY.name, routing_key: 'cast' } }, { headers: { expires: 0 } });
    await waitFor(() => replies.length === 1, 'the ping answered');
    expect(replies).toEqual([{ 'celeriac@x': { ok: 'pong' } }]);
    expect(worker.concurrency).toBe(11);
    await stop();
    expect(await app.control.inspect('shutdown', {}, { destination: ['celeriac@x'] })).toEqual({ 'celeriac@x': { ok: 'shutdown started' } });
    await waitFor(() => asked === 1, 'the shutdown request');
  });
});

describe('events (celeryev)', () => {
  it('are off by default; enable_events sends task and worker events with Celery fields; disable_events stops them', async () => {
    const { app, add, boom } = setup('events');
    await startWorker(app, { hostname: 'celeriac@e' });
    const only = { destination: ['celeriac@e'] };
    const events: CeleryEvent[] = [];
    const stop = await listenEvents(await app.transport(), (e) => events.push(e));
    await (await add.delay(1, 2)).get({ timeout: 3000 });
    expect(events).toEqual([]);
    expect(await app.control.inspect('enable_events', {}, only)).toEqual({ 'celeriac@e': { ok: 'task events enabled' } });
    await waitFor(() => events.some((e) => e.type === 'worker-online'), 'worker-online');
    const ok = await add.delay(2, 3);
    await ok.get({ timeout: 3000 });
    const bad = await boom.delay();
    await expect(bad.get({ timeout: 3000 })).rejects.toThrow();
    await waitFor(() => events.some((e) => e.type === 'task-failed'), 'task-failed');
    const ofOk = events.filter((e) => e.uuid === ok.id).map((e) => e.type);
    expect(ofOk).toEqual(['task-received', 'task-started', 'task-succeeded']);
    const received = events.find((e) => e.uuid === ok.id && e.type === 'task-received')!;
    expect(received).toMatchObject({ hostname: 'celeriac@e', name: 'tasks.add', args: '(2, 3)', retries: 0, pid: process.pid });
    expect(typeof received.timestamp).toBe('number');
    expect(typeof received.clock).toBe('number');
    expect(events.find((e) => e.uuid === ok.id && e.type === 'task-succeeded')).toMatchObject({ result: '5', runtime: expect.any(Number) });
    expect(events.find((e) => e.type === 'task-failed')).toMatchObject({ uuid: bad.id, exception: "Exception('failed')" });
    await app.control.broadcast('heartbeat', {}, { reply: false });
    await waitFor(() => events.some((e) => e.type === 'worker-heartbeat'), 'worker-heartbeat');
    expect(events.find((e) => e.type === 'worker-heartbeat')).toMatchObject({ freq: 2, sw_ident: 'celeriac', processed: expect.any(Number), active: 0 });
    await app.control.inspect('disable_events', {}, only);
    const before = events.length;
    await (await add.delay(3, 3)).get({ timeout: 3000 });
    await app.control.ping(only);
    expect(events.length).toBe(before);
    await stop();
  });

  it('a client with sendSentEvent sends task-sent', async () => {
    const app = memoryApp('sent', { sendSentEvent: true });
    const events: CeleryEvent[] = [];
    const stop = await listenEvents(await app.transport(), (e) => events.push(e), 'task.sent');
    const r = await app.sendTask('tasks.anything', [1], {}, { queue: 'q9' });
    await waitFor(() => events.length === 1, 'task-sent');
    expect(events[0]).toMatchObject({ type: 'task-sent', uuid: r.id, name: 'tasks.anything', queue: 'q9', args: '(1,)' });
    await stop();
  });
});
