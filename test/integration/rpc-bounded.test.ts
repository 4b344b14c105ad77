import { afterEach, describe, expect, inject, it } from 'vitest';
import { amqpSettings, createApp, ErrorCodes, parseUrl, RpcBackend, type CeleriacApp, type CeleriacError, type ResultMeta } from '@celeriac/core/spi';
import { createLogger, Worker } from '@celeriac/worker';
import { freshVhost } from '../servers/rabbitmq.js';
import { waitFor } from '../helpers/wait.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

let n = 0;
const vhost = (): Promise<string> => freshVhost(inject('amqpUrl'), inject('amqpNode'), `rpc-bounded-${process.pid}-${++n}`);

function app(url: string): CeleriacApp {
  const a = createApp({ broker: url });
  open.push(a);
  return a;
}

describe('rpc:// holds a bounded number of task states', () => {
  it('300 tasks a real worker completes and nobody asks for: at most the bound is held; a task waited on still gets its result', async () => {
    const url = await vhost();
    const client = app(url);
    expect(client.config.backend.scheme).toBe('rpc');
    // The worker is another client of the broker, with its own app; its tasks run in this process.
    const workerApp = app(url);
    let ran = 0;
    workerApp.task({ name: 'tasks.echo' }, (x: number) => (ran++, x));
    let slowStarted = false;
    let finishSlow!: () => void;
    const slowMayFinish = new Promise<void>((resolve) => (finishSlow = resolve));
    workerApp.task({ name: 'tasks.slow', trackStarted: true }, async () => {
      slowStarted = true;
      await slowMayFinish; // runs until the flood of other results has come in
      return 'slow done';
    });
    const worker = new Worker(workerApp, { concurrency: 4, logger: createLogger('silent') });
    open.push({ close: () => worker.stop() });
    await worker.start();

    const backend = (await client.backend()) as RpcBackend;
    expect(backend.maxHeldStates).toBe(RpcBackend.DEFAULT_MAX_HELD_STATES);
    expect(RpcBackend.DEFAULT_MAX_HELD_STATES).toBe(8192); // Celery's MESSAGE_BUFFER_MAX
    backend.maxHeldStates = 50;

    // The one task somebody waits on: its waiter is there before the flood, its result comes after it.
    const slow = await client.sendTask<string>('tasks.slow');
    const slowResult = slow.get({ timeout: 60_000 });
    await waitFor(() => slowStarted, 'the slow task running');

    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await client.sendTask('tasks.echo', [i])).id);
    let maxHeld = 0;
    const sample = (): number => (maxHeld = Math.max(maxHeld, backend.heldStates));
    await waitFor(() => (sample(), ran >= 300), 'the worker running all 300', 60_000, 5);
    // Every reply heard (the slow task's STARTED and 300 SUCCESS: 301 task ids), none asked for.
    await waitFor(async () => (await backend.get('no-such-task'), sample(), backend.heldStates + backend.evictedStates >= 301), 'all replies heard', 30_000, 20);
    expect(maxHeld).toBeLessThanOrEqual(50);
    expect(backend.heldStates).toBe(50);
    expect(backend.evictedStates).toBe(251);
    // What is held is the newest: the first task's result went long ago, the last one's is there.
    expect(await backend.get(ids[0]!)).toBeUndefined();
    expect((await backend.get(ids[299]!))?.result).toBe(299);
    const held = (await backend.getMany(ids)).filter((m): m is ResultMeta => m !== undefined);
    expect(held).toHaveLength(50); // the slow task's STARTED, heard first, was among the dropped
    expect(held.every((m) => m.status === 'SUCCESS')).toBe(true);

    finishSlow();
    expect(await slowResult).toBe('slow done');
    expect(backend.heldStates).toBeLessThanOrEqual(50);
  });

  it('drops the least recently heard or read state first; lowering the bound drops at once; a bound below 1 is refused', async () => {
    const settings = amqpSettings(parseUrl('broker', await vhost(), ['amqp']));
    const reader = await RpcBackend.open(settings, `reply-lru-${process.pid}`, { maxHeldStates: 3 });
    const writer = await RpcBackend.open(settings, `writer-lru-${process.pid}`);
    open.push(reader, writer);
    const success = (id: string): ResultMeta => ({ task_id: id, status: 'SUCCESS', result: id, traceback: null, children: [], date_done: null });
    const to = { expiresMs: 60_000, replyTo: reader.replyQueue };
    for (const id of ['t1', 't2', 't3']) await writer.store(success(id), to);
    expect((await reader.get('t1'))?.result).toBe('t1'); // hears all three; t1 is now the most recently used
    await writer.store(success('t4'), to);
    expect((await reader.get('t4'))?.result).toBe('t4');
    expect(reader.heldStates).toBe(3);
    expect(reader.evictedStates).toBe(1);
    expect(await reader.get('t2')).toBeUndefined(); // the least recently used one went, not t1
    expect((await reader.getMany(['t1', 't3'])).map((m) => m?.result)).toEqual(['t1', 't3']);
    reader.maxHeldStates = 1;
    expect(reader.heldStates).toBe(1);
    expect((await reader.get('t3'))?.result).toBe('t3'); // the one read last
    expect(() => (reader.maxHeldStates = 0)).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }) as CeleriacError);
    await expect(RpcBackend.open(settings, `reply-bad-${process.pid}`, { maxHeldStates: 1.5 })).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
  });
});
