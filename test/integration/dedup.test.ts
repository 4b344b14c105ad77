import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp, ErrorCodes, isCeleriacError, type CeleriacApp } from '@celeriac/core';
import { celeriac, ROOT, startWorker, FIXTURE_APP } from '../helpers/processes.js';
import { freshVhost } from '../servers/rabbitmq.js';

const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
let n = 0;

/** Send tasks.add from another Node process with `deduplicate`, printing the task id it got. */
function sendFromAnotherProcess(env: Record<string, string>, dedupId: string, mode: 'first' | 'debounce', ttlMs = 60_000): string {
  const script = `
    import { createApp } from '@celeriac/core';
    const app = createApp({ name: 'other-process' });
    const r = await app.sendTask('tasks.add', [40, 2], {}, { deduplicate: { id: ${JSON.stringify(dedupId)}, ttlMs: ${ttlMs}, mode: ${JSON.stringify(mode)} } });
    console.log(r.id);
    await app.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`the other process failed:\n${r.stderr}`);
  return r.stdout.trim();
}

describe('deduplicate across processes on Redis', () => {
  it('first mode: a send from another process inside the window gets the first task, and the task runs once', async () => {
    const url = inject('redisUrl').replace(/\/0$/, `/${(++n % 14) + 1}`);
    const env = { CELERIAC_BROKER_URL: url };
    const app = createApp({ name: 'dedup-redis', broker: url });
    clients.push(app);
    const first = await app.sendTask<number>('tasks.add', [1, 1], {}, { deduplicate: { id: 'sum', ttlMs: 60_000 } });
    expect(sendFromAnotherProcess(env, 'sum', 'first')).toBe(first.id);
    expect(await (await app.transport()).length('celery')).toBe(1);
    await startWorker(['-A', FIXTURE_APP], env);
    expect(await first.get({ timeout: 10_000 })).toBe(2);
  });

  it('debounce mode: the other process sent last, so its task runs and ours ends REVOKED', async () => {
    const url = inject('redisUrl').replace(/\/0$/, `/${(++n % 14) + 1}`);
    const env = { CELERIAC_BROKER_URL: url };
    const app = createApp({ name: 'dedup-redis', broker: url });
    clients.push(app);
    await startWorker(['-A', FIXTURE_APP], env);
    // Ours would run in 10 s: long enough for the other process's send to replace it first.
    const ours = await app.sendTask<number>('tasks.add', [1, 1], {}, { deduplicate: { id: 'sum', ttlMs: 60_000, mode: 'debounce' }, countdown: 10_000 });
    const theirs = app.asyncResult<number>(sendFromAnotherProcess(env, 'sum', 'debounce', 2000));
    expect(theirs.id).not.toBe(ours.id);
    // The other process's send runs the window's length (2 s) after it was sent.
    expect(await theirs.get({ timeout: 20_000 })).toBe(42);
    const err = (await ours.get({ timeout: 30_000 }).catch((e: unknown) => e)) as { excType?: string };
    expect(err.excType).toBe('TaskRevokedError');
  }, 60_000);
});

describe('celeriac call --dedup-id', () => {
  it('a second call inside the window prints the first task id and enqueues nothing', async () => {
    const url = inject('redisUrl').replace(/\/0$/, `/${(++n % 14) + 1}`);
    const env = { CELERIAC_BROKER_URL: url };
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const call = celeriac(['call', 'tasks.add', '--args', '[1, 1]', '--dedup-id', 'cli-1', '--json'], env);
      expect(await call.exited).toBe(0);
      ids.push((JSON.parse(call.output().slice(call.output().indexOf('{'))) as { id: string }).id);
    }
    expect(ids[1]).toBe(ids[0]);
    const app = createApp({ name: 'dedup-cli', broker: url });
    clients.push(app);
    expect(await (await app.transport()).length('celery')).toBe(1);
  });
});

describe('deduplicate on RabbitMQ', () => {
  it('is refused with rpc:// results (CAPABILITY_MISSING), and works with a Redis result backend', async () => {
    const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `dedup-${process.pid}`);
    const rpc = createApp({ name: 'dedup-rpc', broker: url });
    clients.push(rpc);
    const err = await rpc.sendTask('tasks.add', [1, 1], {}, { deduplicate: { id: 'x', ttlMs: 1000 } }).catch((e: unknown) => e);
    expect(isCeleriacError(err, ErrorCodes.CAPABILITY_MISSING)).toBe(true);
    expect((err as Error).message).toContain('the rpc backend has none');
    const withRedis = createApp({ name: 'dedup-amqp-redis', broker: url, backend: inject('redisUrl').replace(/\/0$/, '/15') });
    clients.push(withRedis);
    const dedup = { id: `amqp-${process.pid}`, ttlMs: 60_000 };
    const a = await withRedis.sendTask('tasks.add', [1, 1], {}, { deduplicate: dedup });
    const b = await withRedis.sendTask('tasks.add', [2, 2], {}, { deduplicate: dedup });
    expect(b.id).toBe(a.id);
    expect(await (await withRedis.transport()).length('celery')).toBe(1);
  });
});
