import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type CeleriacApp, type TaskContext } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { tempDir } from '../helpers/tmp.js';
import { memoryUrl } from '../helpers/wait.js';

const dir = tempDir('celeriac-raw-args-');
const open: { app: CeleriacApp; worker: Worker }[] = [];
afterEach(async () => {
  for (const { app, worker } of open.splice(0)) {
    await worker.stop({ timeoutMs: 1000 });
    await app.close();
  }
});

/**
 * `this.args` / `this.kwargs` are the message's own args and kwargs (Celery's
 * request.args / request.kwargs): a port of `def f(*args, **kwargs)` can tell a
 * trailing positional dict from keyword arguments, which the call's spread cannot.
 */
describe.each(['memory', 'sqlite'] as const)('raw args and kwargs on %s', (kind) => {
  async function world() {
    const broker = kind === 'memory' ? memoryUrl(`raw-args-${Date.now()}`) : `sqlite://${join(dir, `raw-${Date.now()}.db`)}`;
    const app = createApp({ name: 'raw-args', broker });
    const variadic = app.task({ name: 'raw.variadic' }, function (this: TaskContext, ...spread: unknown[]) {
      return { args: this.args, kwargs: this.kwargs, spread };
    });
    const worker = new Worker(app, { logLevel: 'silent' });
    open.push({ app, worker });
    await worker.start();
    return { app, variadic };
  }

  it('a trailing dict arg and kwargs stay apart', async () => {
    const { app } = await world();
    const both = await app.sendTask('raw.variadic', [1, { a: 1 }], { b: 2 });
    expect(await both.get({ timeout: 5000 })).toEqual({ args: [1, { a: 1 }], kwargs: { b: 2 }, spread: [1, { a: 1 }, { b: 2 }] });
    const argsOnly = await app.sendTask('raw.variadic', [1, { b: 2 }], {});
    // Through the spread both calls end in the same arguments; this.args / this.kwargs tell them apart.
    expect(await argsOnly.get({ timeout: 5000 })).toEqual({ args: [1, { b: 2 }], kwargs: {}, spread: [1, { b: 2 }] });
  });

  it('a direct in-process call sees its own args and no kwargs', async () => {
    const { variadic } = await world();
    expect(await variadic(3, { c: 3 })).toEqual({ args: [3, { c: 3 }], kwargs: {}, spread: [3, { c: 3 }] });
  });
});
