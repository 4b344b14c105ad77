/**
 * `pnpm bench amqp`: celeriac and Python Celery 5.2.6 through one private RabbitMQ
 * node, plus raw amqplib sending the same protocol-v2 message (persistent, publisher
 * confirms, manual acks, no task logic) as the limit. Results of round trips travel as rpc:// replies for both.
 *
 * Throughput: N no-op tasks (results ignored) are queued before the worker starts
 * (logging at warn, like the Redis benchmark), followed by one echo whose result
 * marks the end; the clock runs from the moment the broker shows the worker's
 * consumer to that result (with c=100 a few no-ops may still be finishing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AmqpTransport, buildTaskMessage, createApp, newId, toWire, type CeleriacApp } from '@celeriac/core/spi';
import { startRabbit } from '../test/servers/rabbitmq.js';
import { CLI, N, PY, ROOT, RT, celeryClient, pct, printTable, recordDrain, roundTrips, stop, type Row } from './util.js';

const ONE = Math.min(N, 5000);

async function enqueueRates(send: () => Promise<unknown>, row: Row, purge: () => Promise<unknown>): Promise<void> {
  let t = performance.now();
  for (let i = 0; i < ONE; i++) await send();
  row.enqueueOne = ONE / ((performance.now() - t) / 1000);
  await purge();
  t = performance.now();
  for (let i = 0; i < N; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, N - i) }, send));
  row.enqueueBulk = N / ((performance.now() - t) / 1000);
  await purge();
}

/** Queue N no-ops and an end marker, start a worker, and time the drain from its ready line to the marker's result. */
async function drainRate(app: CeleriacApp, start: () => ChildProcess): Promise<{ rate: number; worker: ChildProcess }> {
  for (let i = 0; i < N; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, N - i) }, () => app.sendTask('bench.noop', [])));
  const marker = await app.sendTask('bench.echo', [-1]);
  const ch = await ((await app.transport()) as AmqpTransport).session.adminChannel();
  const worker = start();
  const deadline = Date.now() + 60_000;
  while ((await ch.checkQueue('celery')).consumerCount === 0) {
    if (worker.exitCode !== null || Date.now() > deadline) throw new Error('bench: the worker did not start consuming');
  }
  const t = performance.now();
  await marker.get({ timeout: 600_000 });
  return { rate: N / ((performance.now() - t) / 1000), worker };
}

async function benchCeleriac(url: string): Promise<Row> {
  const app = createApp({ broker: url, backend: 'rpc://' });
  const transport = (await app.transport()) as AmqpTransport;
  const row: Row = { system: 'celeriac (async pool)', enqueueOne: 0, enqueueBulk: 0, c1: 0, c100: 0, p50: 0, p99: 0, rssMb: 0 };
  await enqueueRates(() => app.sendTask('bench.noop', []), row, () => transport.purge('celery'));
  for (const c of [1, 100] as const) {
    const { rate, worker } = await drainRate(app, () =>
      spawn(process.execPath, [CLI, 'worker', '-A', join(ROOT, 'bench', 'celeriac-tasks.ts'), '-c', String(c), '--loglevel', 'warn'], {
        env: { ...process.env, CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: 'rpc://' },
        stdio: 'inherit',
      }),
    );
    await recordDrain(row, c, rate, worker, () => roundTrips(async (i) => void (await (await app.sendTask('bench.echo', [i])).get({ timeout: 30_000 }))));
    await stop(worker);
  }
  await app.close();
  return row;
}

async function benchCelery(url: string): Promise<Row> {
  const env = { CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: 'rpc://', PYTHONDONTWRITEBYTECODE: '1' };
  const py = celeryClient(env);
  const app = createApp({ broker: url, backend: 'rpc://' });
  const transport = (await app.transport()) as AmqpTransport;
  const row: Row = { system: 'Celery 5.2.6 (solo / threads)', enqueueOne: 0, enqueueBulk: null, c1: 0, c100: 0, p50: 0, p99: 0, rssMb: 0 };
  row.enqueueOne = ONE / py(['enqueue', String(ONE), 'celery']).seconds!;
  await transport.purge('celery');
  for (const c of [1, 100] as const) {
    const pool = c === 1 ? ['-P', 'solo'] : ['-P', 'threads', '-c', '100'];
    const { rate, worker } = await drainRate(app, () =>
      spawn(PY, ['-m', 'celery', '-A', 'celery_bench', 'worker', ...pool, '--without-gossip', '--without-mingle', '--without-heartbeat', '-l', 'warning'], {
        cwd: join(ROOT, 'bench'),
        env: { ...process.env, ...env },
        stdio: 'inherit',
      }),
    );
    await recordDrain(row, c, rate, worker, async () => {
      const lat = py(['roundtrip', String(RT)]).latencies!;
      return { p50: pct(lat, 50), p99: pct(lat, 99) };
    });
    await stop(worker);
  }
  await app.close();
  return row;
}

/** The limit: amqplib alone, persistent messages through a confirm channel, consumed with manual acks. */
async function benchRaw(url: string): Promise<Row> {
  const { connect } = await import('amqplib');
  const conn = await connect(url);
  const pub = await conn.createConfirmChannel();
  await pub.assertQueue('raw', { durable: true });
  // The same protocol-v2 message celeriac and Celery send (headers, properties, body): the limit for this wire format.
  const wire = toWire(buildTaskMessage({ task: 'bench.noop', id: newId(), args: [], kwargs: {} }));
  const body = Buffer.from(wire.body);
  const props = { persistent: true, contentType: wire.contentType, contentEncoding: wire.contentEncoding, headers: wire.headers, correlationId: String(wire.headers.id) };
  const send = (): Promise<void> => new Promise((resolve, reject) => pub.sendToQueue('raw', body, props, (err) => (err ? reject(err as Error) : resolve())));
  const row: Row = { system: 'raw amqplib (confirms, acks)', enqueueOne: 0, enqueueBulk: 0, c1: 0, c100: 0, p50: 0, p99: 0, rssMb: null };
  await enqueueRates(send, row, () => pub.purgeQueue('raw'));
  for (const c of [1, 100] as const) {
    for (let i = 0; i < N; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, N - i) }, send));
    const ch = await conn.createChannel();
    await ch.prefetch(c);
    let done = 0;
    const t = performance.now();
    await new Promise<void>((resolve) => {
      void ch.consume('raw', (msg) => {
        if (!msg) return;
        ch.ack(msg);
        if (++done === N) resolve();
      });
    });
    const rate = N / ((performance.now() - t) / 1000);
    if (c === 1) row.c1 = rate;
    else row.c100 = rate;
    await ch.close();
  }
  // Round trip: publish (confirmed) → consume → ack → reply → the caller hears it.
  const server = await conn.createChannel();
  const client = await conn.createChannel();
  const { queue: replies } = await client.assertQueue('', { exclusive: true });
  await server.consume('raw', (msg) => {
    if (!msg) return;
    server.sendToQueue(msg.properties.replyTo as string, msg.content, { correlationId: msg.properties.correlationId as string });
    server.ack(msg);
  });
  const waiting = new Map<string, () => void>();
  await client.consume(replies, (msg) => msg && waiting.get(msg.properties.correlationId as string)?.(), { noAck: true });
  Object.assign(
    row,
    await roundTrips(async (i) => {
      const id = String(i);
      const heard = new Promise<void>((resolve) => waiting.set(id, resolve));
      await new Promise<void>((resolve, reject) =>
        pub.sendToQueue('raw', body, { ...props, correlationId: id, replyTo: replies }, (err) => (err ? reject(err as Error) : resolve())),
      );
      await heard;
    }),
  );
  await conn.close();
  return row;
}

/** `pnpm bench amqp`. */
export async function benchAmqp(): Promise<void> {
  const rabbit = await startRabbit();
  try {
    const rows = [await benchCeleriac(rabbit.url), await benchCelery(rabbit.url), await benchRaw(rabbit.url)];
    printTable(`AMQP benchmark (RabbitMQ) — ${N.toLocaleString('en-US')} no-op tasks, results ignored; round trip = delay→get at idle over rpc:// (${RT} calls)`, rows);
    const [ours, celery, raw] = rows as [Row, Row, Row];
    console.log(`\nceleriac vs Celery: c=100 ×${(ours.c100 / celery.c100).toFixed(1)} (target ≥ 3)`);
    console.log(`celeriac vs raw amqplib: c=100 ${((100 * ours.c100) / raw.c100).toFixed(0)} % (target ≥ 50 %)`);
  } finally {
    await rabbit.stop();
  }
}
