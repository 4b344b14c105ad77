import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp, TaskError, type CeleriacApp } from '@celeriac/core';
import { celeriac, FIXTURE_APP, runCeleriac, startWorker } from '../helpers/processes.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const dir = tempDir('celeriac-failed-');
const clients: CeleriacApp[] = [];
let n = 0;
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

function world(kind: 'sqlite' | 'redis') {
  const id = ++n;
  const url = kind === 'sqlite' ? `sqlite://${join(dir, `f${id}.db`)}` : `${inject('redisUrl')}?keyPrefix=failed${process.pid}-${id}:`;
  const env = { CELERIAC_BROKER_URL: url };
  const client = createApp({ name: 'failed-client', broker: url });
  clients.push(client);
  return { env, client };
}

const cli = runCeleriac;

const jsonOf = <T>(out: string): T => JSON.parse(out.slice(out.search(/[[{]/))) as T;

interface Listed {
  kind: string;
  id: string;
  taskName: string;
  reason?: string;
  excType?: string;
  excMessage?: string;
  queue: string;
  worker?: string;
  receivedAt?: number;
  startedAt?: number;
  endedAt?: number;
}

describe.each(['sqlite', 'redis'] as const)('the failed-task registry over %s', (kind) => {
  it('keeps a task that raised with no retry left beside the dead letters; requeue sends it again as it was, once the fix is deployed', async () => {
    const { env, client } = world(kind);
    const old = await startWorker(['-A', FIXTURE_APP, '-n', 'fr-old@h', '-Q', 'celery,reports'], env);
    const failing = await client.sendTask<number>('tasks.fragile', [4], {}, { queue: 'reports' });
    const err = (await failing.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excMessage).toBe('not fixed yet: 4');
    // And a dead letter beside it: a task no worker knows.
    const unknown = await client.sendTask('tasks.nobody_has_this', []);
    let listed: Listed[] = [];
    await waitFor(async () => {
      listed = jsonOf<Listed[]>((await cli(['failed', 'list', '--json'], env)).out);
      return listed.length === 2;
    }, 'a dead letter and a failed task listed');
    expect(listed.find((l) => l.id === unknown.id)).toMatchObject({ kind: 'dead-letter', reason: 'TASK_UNKNOWN' });
    const kept = listed.find((l) => l.id === failing.id)!;
    expect(kept).toMatchObject({ kind: 'failed', taskName: 'tasks.fragile', excType: 'Exception', excMessage: 'not fixed yet: 4', queue: 'reports', worker: 'fr-old@h' });
    expect(kept.receivedAt! <= kept.startedAt! && kept.startedAt! <= kept.endedAt!).toBe(true);
    const text = await cli(['failed', 'list'], env);
    expect(text.out).toMatch(new RegExp(`${failing.id}\\s+tasks\\.fragile\\s+TASK_FAILED\\s+reports\\s+\\S+\\s+failed: Exception`));
    expect(text.out).toMatch(new RegExp(`${unknown.id}\\s+\\S+\\s+TASK_UNKNOWN\\s+celery\\s+\\S+\\s+dead letter`));
    const show = await cli(['failed', 'show', failing.id], env);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(/kind\s+failed/);
    expect(show.out).toMatch(/error\s+Exception: not fixed yet: 4/);
    expect(show.out).toMatch(/args\s+\(4,\)/);
    expect(show.out).toContain('traceback');
    // The fixed release replaces the old one; requeue sends the task again, as it was, to its queue.
    await startWorker(['-A', FIXTURE_APP, '-n', 'fr-new@h', '-Q', 'celery,reports'], { ...env, FIXTURE_FIXED: '1' });
    old.proc.kill('SIGTERM');
    await old.exited;
    const requeue = await cli(['failed', 'requeue', failing.id, '--json'], env);
    expect(jsonOf(requeue.out)).toEqual({ requeued: 1 });
    expect(await failing.get({ timeout: 15_000 })).toBe(40);
    const after = jsonOf<Listed[]>((await cli(['failed', 'list', '--json'], env)).out);
    expect(after.map((l) => l.kind)).toEqual(['dead-letter']);
  });

  it('keeps at most failedTasks.maxCount, the newest; purge removes both kinds', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', FIXTURE_APP], { ...env, FIXTURE_FAILED_MAX: '2' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await client.sendTask('tasks.fragile', [i]);
      await r.get({ timeout: 10_000 }).catch(() => undefined);
      ids.push(r.id);
    }
    const listed = await waitFor(async () => {
      const l = jsonOf<Listed[]>((await cli(['failed', 'list', '--json'], env)).out);
      return l.length === 2 && l.every((x) => x.id !== ids[0]) ? l : undefined;
    }, 'the oldest failure dropped');
    expect(listed.map((l) => l.id)).toEqual(ids.slice(1));
    const purge = await cli(['failed', 'purge', '--yes'], env);
    expect(purge.out).toContain('Deleted 2 failed task(s).');
    expect((await cli(['failed', 'list'], env)).out).toContain('no failed tasks');
  });
});

describe('the failed-task registry on RabbitMQ with rpc:// results', () => {
  it('keep: true refuses to start a worker (CAPABILITY_MISSING); the default keeps none and failed list shows the dead letters', async () => {
    const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `failed-${process.pid}`);
    const env = { CELERIAC_BROKER_URL: url };
    const refused = celeriac(['worker', '-A', FIXTURE_APP], { ...env, FIXTURE_KEEP_FAILED: 'true' });
    expect(await refused.exited).not.toBe(0);
    expect(refused.output()).toContain('CAPABILITY_MISSING');
    expect(refused.output()).toContain('has no failed-task registry');
    await startWorker(['-A', FIXTURE_APP], env);
    const client = createApp({ name: 'failed-rpc', broker: url });
    clients.push(client);
    await expect(client.sendTask('tasks.fragile', [1]).get({ timeout: 10_000 })).rejects.toThrow('not fixed yet: 1');
    const list = await cli(['failed', 'list'], env);
    expect(list.code).toBe(0);
    expect(list.out).toContain('no failed tasks');
  });
});
