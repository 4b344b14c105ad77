/**
 * Issue #19 item 4, catalogue T08 (policy b, "ack-then-track"): on a node started with a 15 s
 * `consumer_timeout`, a task that runs longer keeps its channel — the delivery is moved to a held
 * copy before the broker's deadline (transport/amqp/held.ts) — so it runs once, no 406 closes the
 * channel, and the short tasks beside it on the same channel are unaffected. A worker killed while
 * it holds such a task loses nothing: the held copy returns to the queue and runs elsewhere.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { AmqpWorld, expectAmqpAL1 } from '../harness/amqp-world.js';
import { readRuns } from '../harness/history.js';
import { startRabbit, type RabbitServer } from '../servers/rabbitmq.js';

const CONSUMER_TIMEOUT_MS = 15_000;
let rabbit: RabbitServer;
beforeAll(async () => {
  // A channel checks consumer_timeout once per tick (60 s by default): a 1 s tick enforces 15 s as 15 s.
  rabbit = await startRabbit({ config: [`consumer_timeout = ${CONSUMER_TIMEOUT_MS}`], advanced: '[{rabbit, [{channel_tick_interval, 1000}]}].' });
}, 120_000);
afterAll(async () => {
  await rabbit?.stop();
});

const query = `heartbeat=5&publishTimeout=3000&consumerTimeout=${CONSUMER_TIMEOUT_MS}`;
/** Held copies now: messages in `celeriac.held.*` queues (an emptied one stays until its x-expires). */
const heldCopies = async (world: AmqpWorld): Promise<number> =>
  (await rabbit.ctl('list_queues', '-p', world.vhost, '-q', '--no-table-headers', 'name', 'messages'))
    .split('\n')
    .filter((l) => l.startsWith('celeriac.held.'))
    .reduce((n, l) => n + Number(l.split('\t')[1]), 0);

describe('T08: a task longer than the broker consumer_timeout', () => {
  it('the node enforces it: a delivery held unacked past 15 s closes its channel with a 406', async () => {
    const world = await AmqpWorld.start(rabbit, { query });
    const conn = await amqp.connect(world.url.split('?')[0]!);
    conn.on('error', () => undefined);
    try {
      const ch = await conn.createChannel();
      let error = '';
      ch.on('error', (err: Error) => void (error = err.message));
      await ch.assertQueue('raw');
      ch.sendToQueue('raw', Buffer.from('x'));
      await ch.consume('raw', () => undefined); // never acked
      await waitFor(() => error, 'the broker closing the channel', CONSUMER_TIMEOUT_MS + 15_000, 100);
      expect(error).toMatch(/406.*acknowledgement .* timed out/);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }, 60_000);

  it('a 25 s task runs once beside short tasks on the same channel: no 406, no redelivery, no re-attach, no held copy left', async () => {
    const world = await AmqpWorld.start(rabbit, { query });
    const worker = await world.startWorker(['-c', '4', '-n', 'long@%h']);
    const [longId] = await world.produce(1, () => 25_000, { prefix: 'long' });
    const ended = (): boolean => readRuns(world.runsFile).some((r) => r.id === longId && r.end !== undefined);
    await waitFor(async () => (await heldCopies(world)) > 0, 'the long task moved to a held copy', CONSUMER_TIMEOUT_MS, 250);
    // A steady producer of short tasks while the long one runs (same worker, same channel), paced by their completion.
    let sent = 1;
    while (!ended()) {
      sent += (await world.produce(6, () => 50, { prefix: 'short' })).length;
      await waitFor(() => ended() || world.finished() >= sent - 1, 'the short tasks beside the long one done', 20_000, 50);
    }
    const report = await expectAmqpAL1(world);
    expect(report.counts.duplicated).toBe(0);
    expect(readRuns(world.runsFile).filter((r) => r.id === longId && r.end !== undefined)).toHaveLength(1);
    expect(worker.output()).not.toMatch(/PRECONDITION_FAILED|acknowledgement .* timed out|not consuming/);
    await waitFor(async () => (await heldCopies(world)) === 0, 'no held copy left', 10_000, 250);
    expect(await world.depth()).toEqual([0, 0]);
  }, 120_000);

  it('a worker killed while it holds a long task loses nothing: the held copy returns to the queue and runs on another worker', async () => {
    const world = await AmqpWorld.start(rabbit, { query });
    const first = await world.startWorker(['-c', '2', '-n', 'k1@%h']);
    const [longId] = await world.produce(1, () => 12_000, { prefix: 'long' });
    await waitFor(async () => (await heldCopies(world)) > 0, 'the long task moved to a held copy', CONSUMER_TIMEOUT_MS, 250);
    const kill = world.faults.begin('kill -9 of the worker holding a long task');
    first.proc.kill('SIGKILL');
    await first.exited;
    await world.startWorker(['-c', '2', '-n', 'k2@%h']);
    await waitFor(() => readRuns(world.runsFile).some((r) => r.id === longId && r.end !== undefined), 'the long task run again to its end', 3 * CONSUMER_TIMEOUT_MS + 15_000, 250);
    world.faults.end(kill);
    await expectAmqpAL1(world);
    await waitFor(async () => (await heldCopies(world)) === 0, 'no held copy left', 10_000, 250);
  }, 120_000);
});
