import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp, TaskError, type CeleriacApp } from '@celeriac/core';
import { ROOT, startWorker } from '../helpers/processes.js';
import { pythonClient, startPythonWorker } from '../helpers/python.js';
import { freshVhost } from '../servers/rabbitmq.js';

const LECTURE = join(ROOT, 'test', 'fixtures', 'apps', 'lecture.ts');
let n = 0;
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

/** A vhost of its own on the run's RabbitMQ node; results in Redis (a db of its own) or as rpc:// replies. */
async function world(results: 'redis' | 'rpc') {
  const id = ++n;
  const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `interop-${process.pid}-${id}`);
  const backend = results === 'rpc' ? 'rpc://' : inject('redisUrl').replace(/\/0$/, `/${(id % 15) + 1}`);
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend, CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: backend };
  return { url, backend, env };
}

describe.each(['redis', 'rpc'] as const)('interop with Python Celery 5.2.6 over RabbitMQ, results in %s', (results) => {
  it('a Python client delay/get on a celeriac worker: values, state, a failure with its exception, a countdown, kwargs', async () => {
    const { env } = await world(results);
    await startWorker(['-A', LECTURE, '-c', '4'], env);
    const [sum, failed, later, kw] = pythonClient(env, [
      { task: 'tasks.add', args: [1, 1] },
      { task: 'tasks.broken_task' },
      { task: 'tasks.add', args: [2, 3], countdown: 1 },
      { task: 'tasks.add', args: ['héllo '], kwargs: { y: 'wörld 世界 🚀' } },
    ]);
    expect(sum).toMatchObject({ value: 2, state: 'SUCCESS', ready: true });
    expect(failed).toMatchObject({ error: { type: 'Exception', message: 'failed' }, state: 'FAILURE', ready: true });
    expect(later).toMatchObject({ value: 5, state: 'SUCCESS' });
    expect(kw).toMatchObject({ value: 'héllo wörld 世界 🚀', state: 'SUCCESS' });
  });

  it('a celeriac client delay/get on a Python worker: values, a failure with its exception, a countdown', async () => {
    const { url, backend, env } = await world(results);
    await startPythonWorker(env);
    const app = createApp({ broker: url, backend });
    clients.push(app);
    expect(await (await app.sendTask<number>('tasks.add', [1, 1])).get({ timeout: 20_000 })).toBe(2);
    const err = (await (await app.sendTask('tasks.broken_task', [])).get({ timeout: 20_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.excType).toBe('Exception');
    expect(err.excMessage).toBe('failed');
    expect(err.remoteTraceback).toContain("raise Exception('failed')");
    const sent = Date.now();
    const later = await app.sendTask<number>('tasks.mul', [6, 7], {}, { countdown: 1000 });
    expect(await later.get({ timeout: 20_000 })).toBe(42);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(950);
    expect(await later.state()).toBe('SUCCESS');
  });
});
