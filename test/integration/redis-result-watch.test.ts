import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, parseUrl, RedisBackend, redisSettings, type CeleriacApp } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';

/**
 * Send-time result subscriptions (Celery's on_task_call): a client that sends a task whose
 * result it wants is subscribed before the task can finish, so `get()` right after costs no
 * SUBSCRIBE round trip; unjoined watches are dropped, and a worker makes none.
 */
const base = inject('redisUrl');
let n = 0;
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function world() {
  const prefix = `watch${process.pid}-${++n}:`;
  const url = `${base}?keyPrefix=${prefix}`;
  const raw = new Redis(base);
  closers.push(async () => raw.disconnect());
  const numsub = async (taskId: string) => Number(((await raw.pubsub('NUMSUB', `${prefix}celery-task-meta-${taskId}`)) as [string, number])[1]);
  return { url, prefix, raw, numsub };
}

const meta = (id: string, result: unknown) => ({ status: 'SUCCESS', result, traceback: null, children: [], date_done: new Date().toISOString(), task_id: id });

describe('Redis result backend: send-time watch', () => {
  it('a watched result stored before wait() is answered from what the subscription heard', async () => {
    const { url, raw, prefix } = world();
    const backend = await RedisBackend.open(redisSettings(parseUrl('backend', url, ['redis'])));
    closers.push(() => backend.close());
    backend.watch('w1');
    const writer = await RedisBackend.open(redisSettings(parseUrl('backend', url, ['redis'])));
    closers.push(() => writer.close());
    await waitFor(async () => Number(((await raw.pubsub('NUMSUB', `${prefix}celery-task-meta-w1`)) as [string, number])[1]) === 1, 'the watch subscribed');
    await writer.store(meta('w1', 42), { expiresMs: 60_000 });
    // The stored key is gone: a wait that subscribed only now could never see the result.
    expect(await raw.del(`${prefix}celery-task-meta-w1`)).toBe(1);
    expect(await backend.wait('w1', { timeoutMs: 2000 })).toMatchObject({ status: 'SUCCESS', result: 42 });
  });

  it('an unjoined watch is dropped after a moment; a joined one lasts until its wait ends', async () => {
    const { url, numsub } = world();
    const backend = await RedisBackend.open(redisSettings(parseUrl('backend', url, ['redis'])));
    closers.push(() => backend.close());
    backend.watch('lonely');
    await waitFor(async () => (await numsub('lonely')) === 1, 'subscribed');
    await waitFor(async () => (await numsub('lonely')) === 0, 'dropped', 5000, 50);

    backend.watch('joined');
    const waiting = backend.wait('joined', { timeoutMs: 3000 }).catch((err: unknown) => err);
    await waitFor(async () => (await numsub('joined')) === 1, 'subscribed');
    const writer = await RedisBackend.open(redisSettings(parseUrl('backend', url, ['redis'])));
    closers.push(() => writer.close());
    await writer.store(meta('joined', 'ok'), { expiresMs: 60_000 });
    expect(await waiting).toMatchObject({ status: 'SUCCESS', result: 'ok' });
    await waitFor(async () => (await numsub('joined')) === 0, 'unsubscribed after the wait');
  });

  it('an app watches what it sends when its backend is open; one with watching off (a worker) does not', async () => {
    const { url, numsub } = world();
    const app: CeleriacApp = createApp({ broker: url, backend: url });
    closers.push(() => app.close());
    await app.backend();
    const ignored = await app.sendTask('tasks.nobody', [1], {}, { ignoreResult: true });
    const sent = await app.sendTask('tasks.nobody', [1]);
    // One subscriber connection, commands in order: once the later watch is in, an earlier one would be too.
    await waitFor(async () => (await numsub(sent.id)) === 1, 'the watch of a sent task');
    expect(await numsub(ignored.id)).toBe(0);
    app.watchResultsOnSend = false;
    const quiet = await app.sendTask('tasks.nobody', [1]);
    app.watchResultsOnSend = true;
    const loud = await app.sendTask('tasks.nobody', [1]);
    await waitFor(async () => (await numsub(loud.id)) === 1, 'the watch after turning it back on');
    expect(await numsub(quiet.id)).toBe(0);
  });
});
