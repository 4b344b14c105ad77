/**
 * Issue #19 item 1, "never connected but idle": a worker whose consumer cannot re-attach after a
 * reconnect keeps trying with backoff, says so (log, `inspect stats`, `celeriac status`), and
 * consumes again as soon as it can; publishes never wait past `publishTimeout`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerError, ErrorCodes } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';
import { AmqpWorld, expectAmqpAL1 } from '../harness/amqp-world.js';
import { startRabbit, type RabbitServer } from '../servers/rabbitmq.js';

let rabbit: RabbitServer;
beforeAll(async () => {
  rabbit = await startRabbit();
}, 120_000);
afterAll(async () => {
  await rabbit?.stop();
});

interface Stats {
  celeriac?: { consumer?: { state: string; error: string | null } };
}

/** Each worker's `celeriac.consumer` from `inspect stats`, by hostname. */
async function consumerStates(world: AmqpWorld): Promise<Record<string, { state: string; error: string | null }>> {
  const replies = await world.client.control.broadcast('stats', {}, { timeout: 1000 }).catch(() => []);
  const out: Record<string, { state: string; error: string | null }> = {};
  for (const reply of replies) for (const [host, raw] of Object.entries(reply)) if ((raw as Stats).celeriac?.consumer) out[host] = (raw as Stats).celeriac!.consumer!;
  return out;
}

/** `celeriac status --json` against the world's vhost. */
async function status(world: AmqpWorld): Promise<{ workers: { hostname: string; consumer: string | null; consumerError: string | null }[] }> {
  const cli = world.cli(['status', '--json', '-t', '1000']);
  const code = await cli.exited;
  expect(code, cli.output()).toBe(0);
  return JSON.parse(cli.output()) as { workers: { hostname: string; consumer: string | null; consumerError: string | null }[] };
}

describe('never connected but idle', () => {
  it('a consumer refused on re-attach after a reconnect retries with backoff, reports "failing" in inspect stats and celeriac status, and consumes again once allowed; nothing is lost', async () => {
    const world = await AmqpWorld.start(rabbit);
    const worker = await world.startWorker(['-c', '4', '-n', 'idle@%h']);
    await world.produce(20, () => 10);
    await world.drained();
    expect(Object.values(await consumerStates(world)).map((c) => c.state)).toEqual(['consuming']);

    // The broker now refuses this vhost's task queue (and only it): the reconnect succeeds, the
    // pidbox answers, but declaring and consuming `celery` fails — the case that used to be only logged.
    const fault = world.faults.begin('celery queue refused, connections closed');
    const deny = '^(?!celery$).*';
    await rabbit.ctl('set_permissions', '-p', world.vhost, 'guest', deny, deny, deny);
    await rabbit.ctl('close_all_connections', '-p', world.vhost, 'test: re-attach refused');
    const failing = await waitFor(async () => {
      const s = Object.values(await consumerStates(world))[0];
      return s?.state === 'failing' ? s : undefined;
    }, 'inspect stats reporting the consumer as failing', 30_000, 250).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}; stats ${JSON.stringify(await consumerStates(world))}; worker output:\n${worker.output()}`);
    });
    expect(failing.error).toMatch(/ACCESS_REFUSED/);
    expect(await world.consumers()).toBe(0);
    const report = await status(world);
    expect(report.workers).toEqual([expect.objectContaining({ consumer: 'failing', consumerError: expect.stringMatching(/ACCESS_REFUSED/) as unknown })]);
    await worker.waitForOutput(/not consuming: attaching to the queues failed; retrying/);

    // Allowed again: the retry (not a new connection) re-attaches, and work flows.
    await rabbit.ctl('set_permissions', '-p', world.vhost, 'guest', '.*', '.*', '.*');
    await waitFor(async () => (await world.consumers()) === 1, 'the worker consuming celery again', 30_000, 250);
    world.faults.end(fault);
    await worker.waitForOutput(/consuming again/);
    expect(Object.values(await consumerStates(world)).map((c) => c.state)).toEqual(['consuming']);
    await world.produce(40, () => 10);
    await expectAmqpAL1(world);
    expect(worker.proc.exitCode).toBeNull();
    expect(worker.output()).not.toMatch(/Unhandled|uncaught/i);
  }, 120_000);

  it('a publish written just before a memory alarm fails with BROKER_BLOCKED at publishTimeout, while the alarm lasts (it does not wait for the alarm to clear)', async () => {
    const world = await AmqpWorld.start(rabbit, { query: 'publishTimeout=1500' });
    await world.produce(1, () => 0);
    const transport = await world.client.transport();
    const session = (transport as unknown as { session: { blocked: string | undefined } }).session;
    await rabbit.ctl('set_vm_memory_high_watermark', '0.0000001');
    const settled: { id: string; code: string | undefined }[] = [];
    const send = (id: string): Promise<void> =>
      world.client.sendTask('hist.work', [0], {}, { taskId: id, ignoreResult: true }).then(
        () => void settled.push({ id, code: undefined }),
        (err: unknown) => void settled.push({ id, code: (err as BrokerError).code }),
      );
    let sends: Promise<void>[] = [];
    try {
      sends = [send('written-first')];
      await waitFor(() => session.blocked !== undefined, 'connection.blocked from the broker', 20_000);
      sends.push(send('after-block'));
      // Both settle by name while the broker still blocks.
      await waitFor(() => settled.length === 2, 'both publishes settled under the alarm', 20_000);
      expect(session.blocked).toBeDefined();
    } finally {
      await rabbit.ctl('set_vm_memory_high_watermark', '0.4');
    }
    await Promise.all(sends);
    expect(settled.map((s) => s.code).sort()).toEqual([ErrorCodes.BROKER_BLOCKED, ErrorCodes.BROKER_BLOCKED]);
  }, 60_000);
});
