import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp, type CeleriacApp } from '@celeriac/core';
import { FIXTURE_APP, runCeleriac, startWorker } from '../helpers/processes.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const dir = tempDir('celeriac-switches-');
const clients: CeleriacApp[] = [];
let n = 0;
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

function world(kind: 'sqlite' | 'redis') {
  const id = ++n;
  const url = kind === 'sqlite' ? `sqlite://${join(dir, `s${id}.db`)}` : `${inject('redisUrl')}?keyPrefix=sw${process.pid}-${id}:`;
  const env = { CELERIAC_BROKER_URL: url };
  const client = createApp({ name: 'switches-client', broker: url });
  clients.push(client);
  return { env, client };
}

const cli = runCeleriac;

/** Each worker's `celeriac.consumer.state` and paused queues, from `inspect stats`. */
async function consumerStates(client: CeleriacApp): Promise<Record<string, { state: string; paused: string[] }>> {
  const stats = await client.control.inspect('stats', {}, { timeout: 1000 });
  return Object.fromEntries(
    Object.entries(stats).map(([node, s]) => {
      const c = (s as { celeriac: { consumer: { state: string }; pausedQueues: string[] } }).celeriac;
      return [node, { state: c.consumer.state, paused: c.pausedQueues }];
    }),
  );
}

describe.each(['sqlite', 'redis'] as const)('durable fleet switches over %s', (kind) => {
  it('celeriac suspend is remembered: a worker started later starts suspended; nothing runs until celeriac resume', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', FIXTURE_APP, '-n', 'sw1@h'], env);
    const suspend = await cli(['suspend'], env);
    expect(suspend.code).toBe(0);
    expect(suspend.out).toContain('fleet: suspended');
    const late = await startWorker(['-A', FIXTURE_APP, '-n', 'sw2@h'], env);
    expect(late.output()).toContain('worker starts suspended');
    await waitFor(async () => {
      const s = await consumerStates(client);
      return s['sw1@h']?.state === 'suspended' && s['sw2@h']?.state === 'suspended';
    }, 'both workers suspended');
    const r = await client.sendTask<number>('tasks.add', [2, 3]);
    const status = await cli(['status', '--json'], env);
    expect(JSON.parse(status.out.slice(status.out.indexOf('{')))).toMatchObject({ fleet: { suspended: true, pausedQueues: [] } });
    // Both workers are suspended: the task stays queued.
    expect(await (await client.transport()).length('celery')).toBe(1);
    const resume = await cli(['resume', '--json'], env);
    expect(resume.code).toBe(0);
    expect(JSON.parse(resume.out.slice(resume.out.indexOf('{')))).toMatchObject({ fleet: { suspended: false } });
    expect(await r.get({ timeout: 15_000 })).toBe(5);
    const text = await cli(['status'], env);
    expect(text.out).not.toContain('SUSPENDED');
  });

  it('celeriac pause <queue> stops delivery from that queue fleet-wide; other queues flow; celeriac resume <queue> restarts it', async () => {
    const { env, client } = world(kind);
    await startWorker(['-A', FIXTURE_APP, '-Q', 'celery,reports', '-n', 'sw3@h'], env);
    const pause = await cli(['pause', 'reports'], env);
    expect(pause.code).toBe(0);
    expect(pause.out).toContain('paused queues: reports');
    await waitFor(async () => (await consumerStates(client))['sw3@h']?.paused.includes('reports'), 'the worker follows the pause');
    const paused = await client.sendTask<number>('tasks.add', [1, 1], {}, { queue: 'reports' });
    expect(await (await client.sendTask<number>('tasks.add', [2, 2])).get({ timeout: 10_000 })).toBe(4);
    expect(await (await client.transport()).length('reports')).toBe(1);
    const status = await cli(['status', '-Q', 'reports'], env);
    expect(status.out).toMatch(/reports .*PAUSED/);
    const resume = await cli(['resume', 'reports'], env);
    expect(resume.code).toBe(0);
    expect(await paused.get({ timeout: 15_000 })).toBe(2);
  });
});

describe('fleet switches on RabbitMQ with rpc:// results', () => {
  it('are refused with CAPABILITY_MISSING (nowhere to remember them); -d still switches running workers', async () => {
    const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `switches-${process.pid}`);
    const env = { CELERIAC_BROKER_URL: url };
    await startWorker(['-A', FIXTURE_APP, '-n', 'sw4@h'], env);
    const refused = await cli(['suspend'], env);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('keeps none; use a Redis or SQLite result backend');
    const direct = await cli(['suspend', '-d', 'sw4@h'], env);
    expect(direct.code).toBe(0);
    expect(direct.out).toContain('sw4@h: OK');
    expect(direct.out).toContain('1 node online.');
  });
});
