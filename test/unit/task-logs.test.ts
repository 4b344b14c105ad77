import { describe, expect, it } from 'vitest';
import { listenEvents, type CeleryEvent } from '@celeriac/core/spi';
import { memoryApp, startInProcessWorker } from '../helpers/in-process.js';
import { waitFor } from '../helpers/wait.js';

/** The lines a task writes with `this.log` travel on its final event while events are on (the dashboard shows them). */
describe('task log lines on events', () => {
  function setup(label: string) {
    const app = memoryApp(label);
    const chatty = app.task({ name: 'logs.chatty' }, async function (this: { log: { info(m: string, d?: Record<string, unknown>): void; warn(m: string): void; debug(m: string): void } }, n: number) {
      this.log.info('starting', { n });
      this.log.debug('not kept: the worker does not log debug');
      this.log.warn('halfway');
      if (n < 0) throw new Error('negative');
      return n * 2;
    });
    const flood = app.task({ name: 'logs.flood' }, async function (this: { log: { info(m: string): void } }) {
      for (let i = 0; i < 500; i++) this.log.info(`line ${i} ${'x'.repeat(2000)}`);
      return 'ok';
    });
    return { app, chatty, flood };
  }

  it('task-succeeded and task-failed carry the lines, in order, with level and time', async () => {
    const { app, chatty } = setup('task-logs');
    await startInProcessWorker(app, { hostname: 'celeriac@logs', sendEvents: true });
    const events: CeleryEvent[] = [];
    const stop = await listenEvents(await app.transport(), (e) => events.push(e), 'task.#');
    const ok = await chatty.delay(2);
    expect(await ok.get({ timeout: 3000 })).toBe(4);
    const bad = await chatty.delay(-1);
    await expect(bad.get({ timeout: 3000 })).rejects.toThrow('negative');
    await waitFor(() => events.some((e) => e.type === 'task-failed'), 'task-failed');
    const succeeded = events.find((e) => e.type === 'task-succeeded' && e.uuid === ok.id)!;
    expect(succeeded.logs).toEqual([
      { at: expect.any(Number), level: 'info', msg: 'starting {"n":2}' },
      { at: expect.any(Number), level: 'warn', msg: 'halfway' },
    ]);
    const failed = events.find((e) => e.type === 'task-failed' && e.uuid === bad.id)!;
    expect((failed.logs as { msg: string }[]).map((l) => l.msg)).toEqual(['starting {"n":-1}', 'halfway']);
    const received = events.find((e) => e.type === 'task-received' && e.uuid === ok.id)!;
    expect(received).toMatchObject({ queue: 'celery', group: null });
    await stop();
  });

  it('keeps at most 200 lines of 1000 characters per task, and says so', async () => {
    const { app, flood } = setup('task-logs-flood');
    await startInProcessWorker(app, { hostname: 'celeriac@flood', sendEvents: true });
    const events: CeleryEvent[] = [];
    const stop = await listenEvents(await app.transport(), (e) => events.push(e), 'task.succeeded');
    const r = await flood.delay();
    await r.get({ timeout: 3000 });
    await waitFor(() => events.length === 1, 'task-succeeded');
    const logs = events[0]!.logs as { msg: string; level: string }[];
    expect(logs).toHaveLength(201);
    expect(logs[0]!.msg.length).toBe(1001);
    expect(logs[200]).toMatchObject({ level: 'warn', msg: '(further lines not kept: more than 200)' });
    await stop();
  });

  it('keeps nothing while events are off', async () => {
    const { app, chatty } = setup('task-logs-off');
    const worker = await startInProcessWorker(app, { hostname: 'celeriac@off' });
    await (await chatty.delay(1)).get({ timeout: 3000 });
    expect(worker.events.logs.take('anything')).toBeUndefined();
    expect(worker.events.logs.recording).toBe(false);
  });
});
