import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, ErrorCodes, MAX_ERROR_TEXT, TaskError, type CeleriacApp } from '@celeriac/core/spi';
import { Worker } from '@celeriac/worker';
import { memoryUrl } from '../helpers/wait.js';

const apps: CeleriacApp[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ timeoutMs: 1000 });
  for (const a of apps.splice(0)) await a.close();
});

async function setup() {
  const app = createApp({ broker: memoryUrl('t29') });
  apps.push(app);
  let runs = 0;
  app.task({ name: 'tasks.add', args: z.tuple([z.number(), z.number()]), autoretryFor: [Error] }, (a, b) => {
    runs++;
    return a + b;
  });
  app.task({ name: 'tasks.bigint' }, () => 10n);
  app.task({ name: 'tasks.symbol' }, () => Symbol('s'));
  app.task({ name: 'tasks.circular' }, () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    return o;
  });
  app.task({ name: 'tasks.huge_error' }, () => {
    const cause: Record<string, unknown> = {};
    cause.cause = cause;
    throw new Error('x'.repeat(5 * 1024 * 1024), { cause });
  });
  const worker = new Worker(app, { logLevel: 'silent', concurrency: 4 });
  workers.push(worker);
  await worker.start();
  return { app, runs: () => runs };
}

const failure = async (app: CeleriacApp, name: string, args: unknown[], kwargs: Record<string, unknown> = {}) =>
  (await (await app.sendTask(name, args, kwargs)).get({ timeout: 5000 }).catch((e: unknown) => e)) as TaskError;

describe('wrong argument types and unserialisable results (T29)', () => {
  it('validation failures are FAILURE TASK_ARGS_INVALID, never retried, and the worker stays up', async () => {
    const { app, runs } = await setup();
    const cases: unknown[][] = [['1', 2], [1], [1, 2, 3], [null, Infinity], [Array.from({ length: 100_000 }, () => 1), 2]];
    for (const args of cases) {
      const err = await failure(app, 'tasks.add', args);
      expect(err, JSON.stringify(args).slice(0, 40)).toBeInstanceOf(TaskError);
      expect(err.code).toBe(ErrorCodes.TASK_ARGS_INVALID);
    }
    const extraKwargs = await failure(app, 'tasks.add', [1, 2], { extra: true });
    expect(extraKwargs.code).toBe(ErrorCodes.TASK_ARGS_INVALID);
    expect(runs()).toBe(0);
    for (let i = 0; i < 100; i++) expect(await (await app.sendTask('tasks.add', [i, 1])).get({ timeout: 5000 })).toBe(i + 1);
  });

  it('a BigInt, a Symbol or a circular result is FAILURE RESULT_NOT_SERIALIZABLE with a readable description', async () => {
    const { app } = await setup();
    for (const [name, shows] of [['tasks.bigint', '10n'], ['tasks.symbol', 'Symbol(s)'], ['tasks.circular', 'object']] as const) {
      const err = await failure(app, name, []);
      expect(err.code, name).toBe(ErrorCodes.RESULT_NOT_SERIALIZABLE);
      expect(err.excMessage, name).toContain(shows);
    }
  });

  it('an error with a circular cause and a 5 MB message is stored truncated', async () => {
    const { app } = await setup();
    const err = await failure(app, 'tasks.huge_error', []);
    expect(err.excType).toBe('Exception');
    expect(err.excMessage.length).toBeLessThan(MAX_ERROR_TEXT + 100);
    expect(err.excMessage).toMatch(/truncated \d+ characters/);
    expect((err.remoteTraceback ?? '').length).toBeLessThan(MAX_ERROR_TEXT + 100);
  });
});
