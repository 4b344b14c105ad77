import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { AmqpTransport, BrokerError, createApp, ErrorCodes, type AsyncResult, type CeleriacApp } from '@celeriac/core/spi';
import { Worker, createLogger } from '@celeriac/worker';
import { FIXTURE_APP, startWorker, type Spawned } from '../helpers/processes.js';
import { readEffects } from '../helpers/effects.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freshVhost, rabbitCtl, startRabbit, type RabbitServer } from '../servers/rabbitmq.js';

const dir = tempDir('celeriac-amqp-faults-');
let n = 0;
const apps: CeleriacApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

/** Ids of tasks whose end effect was recorded, with how many times each ended. */
function endCounts(effects: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of readEffects(effects)) if (e.kind === 'end') counts.set(String(e.tag), (counts.get(String(e.tag)) ?? 0) + 1);
  return counts;
}

describe('T01 at CI size: kill -9 workers mid-task, quorum queue, acks late', () => {
  it('every task completes, duplicates stay within the in-flight bound, and the queue ends empty with no dead letters', async () => {
    const node = inject('amqpNode');
    const vhost = `t01-${process.pid}`;
    const url = await freshVhost(inject('amqpUrl'), node, vhost);
    const queues = { celery: { type: 'quorum', deliveryLimit: 10, deadLetterExchange: 'celeriac.dead_letters' } } as const;
    const effects = join(dir, 't01.jsonl');
    const backend = `${inject('redisUrl')}?keyPrefix=t01-${process.pid}:`;
    const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend, EFFECTS_FILE: effects, FIXTURE_QUEUES: JSON.stringify(queues), CELERIAC_LOGLEVEL: 'info' };
    const client = createApp({ broker: url, backend, queues });
    apps.push(client);
    const total = 1200;
    const results: AsyncResult[] = [];
    for (let i = 0; i < total; i++) results.push(await client.sendTask('tasks.sleepy', [20 + (i % 5) * 10, `t${i}`]));
    const workers: Spawned[] = [await startWorker(['-A', FIXTURE_APP, '-c', '4'], env), await startWorker(['-A', FIXTURE_APP, '-c', '4'], env)];
    const kills = 4;
    for (let k = 0; k < kills; k++) {
      await waitFor(() => endCounts(effects).size >= ((k + 1) * total) / (kills + 2), `progress before kill ${k + 1}`, 30_000);
      const victim = k % 2;
      workers[victim]!.proc.kill('SIGKILL');
      await workers[victim]!.exited;
      workers[victim] = await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    }
    for (const r of results) await r.get({ timeout: 60_000 });
    const counts = endCounts(effects);
    expect(counts.size).toBe(total);
    const duplicates = [...counts.values()].reduce((d, c) => d + (c - 1), 0);
    // A kill can only repeat what the killed worker held unacknowledged: 4 slots (prefetch = concurrency).
    expect(duplicates).toBeLessThanOrEqual(kills * 4);
    await waitFor(async () => {
      const rows = (await rabbitCtl(node, 'list_queues', '-p', vhost, '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged')).trim();
      return rows.split('\n').every((l) => /^celery\t0\t0$/.test(l) || /^celeriac\.dead_letters\t0\t0$/.test(l) || !/^(celery|celeriac\.dead_letters)\t/.test(l));
    }, 'queue drained: nothing ready, nothing unacked, nothing dead-lettered');
    expect(await (await client.transport()).listDeadLetters()).toEqual([]);
  });
});

describe('a private RabbitMQ node for broker faults', () => {
  let rabbit: RabbitServer;
  beforeAll(async () => {
    rabbit = await startRabbit();
  }, 120_000);
  afterAll(async () => {
    await rabbit?.stop();
  });

  it('T09 at CI size: confirmed publishes to a durable classic and a quorum queue survive a broker kill -9; failed ones are retried with the same id; no confirmed task is lost', async () => {
    const url = `${rabbit.url}?publishTimeout=3000`;
    const backend = `${inject('redisUrl')}?keyPrefix=t09-${process.pid}:`;
    // A durable classic queue and a quorum queue. RabbitMQ 3.10 keeps a new quorum queue's Raft
    // registration in a table it saves lazily: a queue declared seconds before a kill -9 comes back empty,
    // as a follower with term 0, and nacks every publish. T09 is about publishes in flight, not about a
    // declaration in flight: the queue is declared, then the node restarted cleanly, before the run.
    const queues = { qq: { type: 'quorum' } } as const;
    const declarer = createApp({ broker: url, backend, queues });
    await ((await declarer.transport()) as AmqpTransport).declare('qq');
    await declarer.close();
    await rabbit.ctl('stop');
    await rabbit.restart();
    const client = createApp({ broker: url, backend, queues });
    apps.push(client);
    const perQueue = 600;
    const ids = Array.from({ length: 2 * perQueue }, (_, i) => `t09-${i}`);
    const confirmed = new Set<string>();
    let rejectedAtCrash = 0;
    let killed = false;
    const beam = await rabbit.pid();
    const inFlightLimit = 100;
    const send = async (id: string, i: number): Promise<void> => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          await client.sendTask('t09.effect', [id], {}, { taskId: id, queue: i % 2 ? 'qq' : 'celery' });
          confirmed.add(id);
          if (!killed && confirmed.size >= 300) {
            // The crash lands at this exact point, with up to 100 publishes in flight.
            killed = true;
            process.kill(beam, 'SIGKILL');
          }
          return;
        } catch (err) {
          // Failed or unknown: send again under the same id (a duplicate is possible, a loss is not).
          if ((err as BrokerError).code !== ErrorCodes.BROKER_UNAVAILABLE) throw err;
          if (killed) rejectedAtCrash++;
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const queue = ids.map((id, i) => () => send(id, i));
    const runners = Array.from({ length: inFlightLimit }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await job();
    });
    await waitFor(() => killed, 'the crash', 30_000);
    await rabbit.kill9(beam);
    await new Promise((r) => setTimeout(r, 2000));
    await rabbit.restart();
    await Promise.all(runners);
    expect(confirmed.size).toBe(ids.length);
    expect(rejectedAtCrash).toBeGreaterThan(0);
    // Every confirmed task runs: consume both queues and count the effects.
    const seen = new Map<string, number>();
    const consumer = createApp({ broker: url, backend, queues });
    apps.push(consumer);
    consumer.task({ name: 't09.effect' }, (id: string) => void seen.set(id, (seen.get(id) ?? 0) + 1));
    const worker = new Worker(consumer, { concurrency: 50, queues: ['celery', 'qq'], logger: createLogger('silent') });
    await worker.start();
    try {
      await waitFor(() => ids.every((id) => seen.has(id)), 'every confirmed task run', 60_000);
    } finally {
      await worker.stop();
    }
    const duplicated = [...seen.values()].reduce((d, c) => d + c - 1, 0);
    expect(duplicated).toBeLessThanOrEqual(inFlightLimit);
    expect([...seen.keys()].every((id) => ids.includes(id))).toBe(true);
  });

  it('T10 at CI size: workers resume after stop_app/start_app (twice), close_all_connections and a kill -9 restart; nothing lost, no worker exits', async () => {
    const effects = join(dir, `t10-${++n}.jsonl`);
    const backend = `${inject('redisUrl')}?keyPrefix=t10-${process.pid}:`;
    const env = { CELERIAC_BROKER_URL: rabbit.url, CELERIAC_RESULT_BACKEND: backend, EFFECTS_FILE: effects, CELERIAC_LOGLEVEL: 'info' };
    const client = createApp({ broker: rabbit.url, backend });
    apps.push(client);
    const workers = [await startWorker(['-A', FIXTURE_APP, '-c', '4'], env), await startWorker(['-A', FIXTURE_APP, '-c', '4'], env)];
    const consumers = async (): Promise<number> => {
      const rows = await rabbit.queues().catch(() => []);
      return rows.find((q) => q.name === 'celery')?.consumers ?? 0;
    };
    const faults: [string, () => Promise<void>][] = [
      ['stop_app/start_app', async () => void (await rabbit.ctl('stop_app'), await rabbit.ctl('start_app'))],
      ['stop_app/start_app again', async () => void (await rabbit.ctl('stop_app'), await rabbit.ctl('start_app'))],
      ['close_all_connections', async () => void (await rabbit.ctl('close_all_connections', 'test fault'))],
      ['kill -9 and restart', async () => void (await rabbit.kill9(), await rabbit.restart())],
    ];
    let sent = 0;
    const all: AsyncResult[] = [];
    for (const [name, fault] of faults) {
      const batch: AsyncResult[] = [];
      for (let i = 0; i < 200; i++) batch.push(await client.sendTask('tasks.sleepy', [30, `t10-${sent++}`]));
      all.push(...batch);
      await waitFor(() => endCounts(effects).size >= sent - 150, `work under way before ${name}`, 30_000);
      await fault();
      await waitFor(async () => (await consumers()) === 2, `both workers consuming again after ${name}`, 30_000, 250);
      // Progress: this batch finishes after the fault.
      await waitFor(() => endCounts(effects).size >= sent, `the batch finishes after ${name}`, 30_000);
    }
    for (const r of all) await r.get({ timeout: 30_000 });
    expect(endCounts(effects).size).toBe(sent);
    for (const w of workers) {
      expect(w.proc.exitCode).toBeNull();
      expect(w.output()).not.toMatch(/Unhandled|uncaught|IllegalOperationError/i);
    }
  });

  it('T12 at CI size: under a memory alarm publishes wait, then fail with BROKER_BLOCKED; after it clears, confirmed tasks run and rejected ones never do', async () => {
    const url = `${rabbit.url}?publishTimeout=1000`;
    const backend = `${inject('redisUrl')}?keyPrefix=t12-${process.pid}:`;
    const client = createApp({ broker: url, backend });
    apps.push(client);
    await client.sendTask('t12.effect', ['warm-up'], {}, { taskId: 'warm-up' });
    const rssBefore = process.memoryUsage().rss;
    await rabbit.ctl('set_vm_memory_high_watermark', '0.0000001');
    const outcomes = new Map<string, 'confirmed' | 'blocked'>();
    const payload = 'x'.repeat(1024);
    const applies: Promise<void>[] = [];
    const unexpected: unknown[] = [];
    const apply = (id: string): void => {
      applies.push(
        client.sendTask('t12.effect', [id, payload], {}, { taskId: id }).then(
          () => void outcomes.set(id, 'confirmed'),
          (err: unknown) => {
            if ((err as BrokerError).code !== ErrorCodes.BROKER_BLOCKED) unexpected.push(err);
            outcomes.set(id, 'blocked');
          },
        ),
      );
    };
    const transport = (await client.transport()) as AmqpTransport;
    try {
      // The first publish under the alarm reaches the broker, which then blocks the connection: that apply
      // fails at its deadline too (BROKER_BLOCKED, outcome unknown: the broker holds it and may run it later).
      apply('t12-first');
      await waitFor(() => transport.session.blocked !== undefined, 'connection.blocked from the broker', 20_000);
      // Once blocked, nothing more is written: each apply fails by its deadline with a named error.
      for (let i = 0; i < 300; i++) apply(`t12-${i}`);
      await waitFor(() => outcomes.size >= 301, 'publishes refused while blocked', 20_000);
      expect([...outcomes.values()].every((o) => o === 'blocked')).toBe(true);
      expect(transport.session.blocked).toBeDefined();
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
    } finally {
      await rabbit.ctl('set_vm_memory_high_watermark', '0.4');
    }
    await Promise.all(applies);
    expect(unexpected).toEqual([]);
    const seen = new Set<string>();
    const consumer = createApp({ broker: url, backend });
    apps.push(consumer);
    consumer.task({ name: 't12.effect' }, (id: string) => void seen.add(id));
    const worker = new Worker(consumer, { concurrency: 20, logger: createLogger('silent') });
    await worker.start();
    try {
      const confirmedIds = [...outcomes].filter(([, o]) => o === 'confirmed').map(([id]) => id);
      await waitFor(() => seen.has('warm-up') && confirmedIds.every((id) => seen.has(id)), 'every confirmed task run', 30_000);
      await waitFor(async () => (await (await consumer.transport()).length('celery')) === 0, 'queue drained');
    } finally {
      await worker.stop();
    }
    // Refused before being written: never run. (t12-first was written before the block: it may run.)
    for (const [id, o] of outcomes) if (o === 'blocked' && id !== 't12-first') expect(seen.has(id), id).toBe(false);
  });
});
