import { afterEach, describe, expect, inject, it } from 'vitest';
import { AmqpTransport, chord, createApp, ErrorCodes, type CeleriacApp, type CeleriacError } from '@celeriac/core/spi';
import { Worker, createLogger } from '@celeriac/worker';
import { freshVhost, rabbitCtl } from '../servers/rabbitmq.js';
import { waitFor } from '../helpers/wait.js';
import { loadFixture } from '../helpers/fixtures.js';

let n = 0;
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

async function vhost(): Promise<{ url: string; name: string }> {
  const name = `topo-${process.pid}-${++n}`;
  return { url: await freshVhost(inject('amqpUrl'), inject('amqpNode'), name), name };
}

function app(options: Parameters<typeof createApp>[0]): CeleriacApp {
  const a = createApp({ backend: `${inject('redisUrl')}?keyPrefix=topo${process.pid}-${n}:`, ...options });
  open.push(a);
  return a;
}

async function raw(a: CeleriacApp) {
  return ((await a.transport()) as AmqpTransport).session.adminChannel();
}

/** `rabbitmqctl list_<what>` rows for a vhost, tab-separated columns. */
async function list(vhostName: string, what: string, ...columns: string[]): Promise<string[][]> {
  const out = await rabbitCtl(inject('amqpNode'), `list_${what}`, '-p', vhostName, '-q', '--no-table-headers', ...columns);
  return out.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

describe('AMQP topology, as Celery declares it', () => {
  it('declares the durable direct exchange and queue "celery", and publishes persistent messages with Celery properties', async () => {
    const { url, name } = await vhost();
    const a = app({ broker: url });
    const sent = await a.sendTask('tasks.add', [1, 1], {}, { expires: 60_000 });
    expect(await list(name, 'exchanges', 'name', 'type', 'durable')).toContainEqual(['celery', 'direct', 'true']);
    expect(await list(name, 'queues', 'name', 'durable', 'arguments')).toContainEqual(['celery', 'true', '[]']);
    expect(await list(name, 'bindings', 'source_name', 'destination_name', 'routing_key')).toContainEqual(['celery', 'celery', 'celery']);
    const ch = await raw(a);
    const msg = await ch.get('celery', { noAck: true });
    if (!msg) throw new Error('no message in "celery"');
    // Sent as Celery sends a direct queue's message: the default exchange, routing key = queue name.
    expect(msg.fields).toMatchObject({ exchange: '', routingKey: 'celery' });
    const fixture = (loadFixture('amqp/task-delay.json').raw as { messages: { properties: Record<string, unknown>; headers: Record<string, unknown> }[] }).messages[0]!;
    expect(msg.properties).toMatchObject({
      contentType: fixture.properties.content_type,
      contentEncoding: fixture.properties.content_encoding,
      deliveryMode: 2,
      priority: 0,
      correlationId: sent.id,
      replyTo: a.oid,
    });
    // `expires` also as the per-message TTL (ms), as Celery writes it.
    expect(Number(msg.properties.expiration)).toBeGreaterThan(55_000);
    expect(Object.keys(msg.properties.headers ?? {}).sort()).toEqual(Object.keys(fixture.headers).sort());
    expect(JSON.parse(msg.content.toString())).toEqual([[1, 1], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]);
    // Heartbeats on: the client asks for 10 s, the node (test config) for 5: the smaller is agreed.
    const heartbeats = (await list(name, 'connections', 'timeout')).flat().map(Number);
    expect(heartbeats.length).toBeGreaterThan(0);
    expect(heartbeats.every((h) => h === 5)).toBe(true);
  });

  it('routes by name or glob to named queues, through direct, topic and fanout exchanges', async () => {
    const { url } = await vhost();
    const a = app({
      broker: url,
      queues: {
        emails: { exchange: 'mail', exchangeType: 'topic', routingKey: 'email.#' },
        audit: { exchange: 'mail', exchangeType: 'topic', routingKey: '#' },
        fanA: { exchange: 'fan', exchangeType: 'fanout' },
        fanB: { exchange: 'fan', exchangeType: 'fanout' },
        reports: {},
      },
      routes: {
        'email.*': { queue: 'emails' },
        'tasks.report': { queue: 'reports' },
        'bcast.*': { queue: 'fanA' },
        'notify.*': { queue: 'emails', exchange: 'mail', routingKey: 'email.notify' },
      },
    });
    const t = (await a.transport()) as AmqpTransport;
    // Declare every queue first (a worker would): a fanout or topic delivers only to queues that exist.
    for (const q of ['emails', 'audit', 'fanA', 'fanB', 'reports']) await t.declare(q);
    await a.sendTask('email.send', []);
    await a.sendTask('tasks.report', []);
    await a.sendTask('bcast.hello', []);
    await a.sendTask('notify.user', []);
    const lengths = Object.fromEntries(await Promise.all(['emails', 'audit', 'fanA', 'fanB', 'reports'].map(async (q) => [q, await t.length(q)] as const)));
    expect(lengths).toEqual({ emails: 2, audit: 2, fanA: 1, fanB: 1, reports: 1 });
  });

  it('declares queue arguments: priority, quorum with a delivery limit, dead-letter exchange', async () => {
    const { url, name } = await vhost();
    const a = app({
      broker: url,
      queues: {
        urgent: { maxPriority: 10 },
        durableq: { type: 'quorum', deliveryLimit: 10, deadLetterExchange: 'celeriac.dead_letters' },
      },
    });
    const t = (await a.transport()) as AmqpTransport;
    await t.declare('urgent');
    await t.declare('durableq');
    const rows = await list(name, 'queues', 'name', 'type', 'arguments');
    expect(rows.find((r) => r[0] === 'urgent')?.[2]).toContain('x-max-priority');
    const quorum = rows.find((r) => r[0] === 'durableq');
    expect(quorum?.[1]).toBe('quorum');
    expect(quorum?.[2]).toMatch(/x-delivery-limit.*10/);
    expect(quorum?.[2]).toContain('celeriac.dead_letters');
  });

  it('a queue that exists with other arguments is a named QUEUE_MISMATCH error that says what differs', async () => {
    const { url } = await vhost();
    await app({ broker: url }).sendTask('tasks.add', [1, 1]);
    const other = app({ broker: url, queues: { celery: { maxPriority: 10 } } });
    const err = (await other.sendTask('tasks.add', [1, 1]).catch((e: unknown) => e)) as CeleriacError;
    expect(err.code).toBe(ErrorCodes.QUEUE_MISMATCH);
    expect(err.message).toMatch(/Queue "celery" .*inequivalent arg 'x-max-priority'/);
    // The transport stays usable: the same app can still publish elsewhere.
    await other.sendTask('tasks.add', [1, 1], {}, { queue: 'elsewhere' });
    expect(await (await other.transport()).length('elsewhere')).toBe(1);
  });

  it('T11: a queue deleted behind the producer is declared again and all 100 tasks complete; a route no queue is bound to is UNROUTABLE', async () => {
    const { url } = await vhost();
    const a = app({
      broker: url,
      queues: { emails: { exchange: 'mail', exchangeType: 'topic', routingKey: 'email.#' } },
      routes: { 'lost.*': { queue: 'emails', exchange: 'mail', routingKey: 'nobody.listens' } },
    });
    await a.sendTask('tasks.add', [0, 0]);
    const t = (await a.transport()) as AmqpTransport;
    await (await t.session.adminChannel()).deleteQueue('celery');
    const results = [];
    for (let i = 0; i < 100; i++) results.push(await a.sendTask<number>('tasks.add', [i, i]));
    expect(await t.length('celery')).toBe(100);
    const unroutable = (await a.sendTask('lost.task', []).catch((e: unknown) => e)) as CeleriacError;
    expect(unroutable.code).toBe(ErrorCodes.UNROUTABLE);
    expect(unroutable.message).toContain('nobody.listens');
    a.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    const worker = new Worker(a, { concurrency: 8, logger: createLogger('silent') });
    open.push({ close: () => worker.stop() });
    await worker.start();
    const values = await Promise.all(results.map((r) => r.get({ timeout: 20_000 })));
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => 2 * i));
  });

  it('delays broker-side through TTL-and-dead-letter queues: a countdown runs on time and no delay queue holds a consumer', async () => {
    const { url, name } = await vhost();
    const a = app({ broker: url });
    a.task({ name: 'tasks.now' }, () => Date.now());
    const worker = new Worker(a, { concurrency: 2, logger: createLogger('silent') });
    open.push({ close: () => worker.stop() });
    await worker.start();
    const sent = Date.now();
    // Long enough that the message is still held while rabbitmqctl (a second or so) lists the queues.
    const r = await a.sendTask<number>('tasks.now', [], {}, { countdown: 4000 });
    const holders = (await list(name, 'queues', 'name', 'messages', 'consumers')).filter((row) => row[0]!.startsWith('celeriac.delay.'));
    expect(holders).toEqual([[expect.stringMatching(/^celeriac\.delay\.\d+ms\.celery$/), '1', '0']]);
    const ran = await r.get({ timeout: 10_000 });
    expect(ran - sent).toBeGreaterThanOrEqual(3995);
  });
});

describe('bad input over AMQP', () => {
  it('malformed, pickled and unknown-task messages are dead-lettered with their code and requeued after a fix; the worker keeps serving', async () => {
    const { url } = await vhost();
    const a = app({ broker: url });
    a.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    const t = (await a.transport()) as AmqpTransport;
    await t.declare('celery');
    const raw = (id: string, body: string, contentType = 'application/json', task = 'tasks.add') =>
      t.session.publish('', 'celery', Buffer.from(body), { contentType, contentEncoding: 'utf-8', correlationId: id, headers: { id, task, lang: 'py' } });
    await raw('not-json', '{"body": nope');
    await raw('pickled', '\x80\x04K\x01.', 'application/x-python-serialize');
    await raw('v1-dict', '{"task": "tasks.add", "args": [1, 1]}');
    const unknown = await a.sendTask('tasks.later', [1]);
    const worker = new Worker(a, { concurrency: 2, logger: createLogger('silent') });
    open.push({ close: () => worker.stop() });
    await worker.start();
    const dead = await waitFor(async () => {
      const list = await t.listDeadLetters();
      return list.length === 4 ? list : undefined;
    }, 'four dead letters');
    expect(Object.fromEntries(dead.map((d) => [d.id, d.reason]))).toEqual({
      'not-json': 'MESSAGE_MALFORMED',
      pickled: 'CONTENT_TYPE_REJECTED',
      'v1-dict': 'MESSAGE_MALFORMED',
      [unknown.id]: 'TASK_UNKNOWN',
    });
    expect(await (await a.sendTask<number>('tasks.add', [2, 2])).get({ timeout: 10_000 })).toBe(4);
    // Deploy the missing task, requeue its dead letter: it runs on its original queue.
    a.task({ name: 'tasks.later' }, (x: number) => x * 10);
    expect(await a.requeueDeadLetters([unknown.id])).toBe(1);
    expect(await unknown.get({ timeout: 10_000 })).toBe(10);
    expect((await t.listDeadLetters()).map((d) => d.id).sort()).toEqual(['not-json', 'pickled', 'v1-dict']);
  });
});

describe('rpc:// result backend', () => {
  it('works for delay/get, and refuses a chord with a named error naming the backends that can join', async () => {
    const { url } = await vhost();
    const a = createApp({ broker: url });
    open.push(a);
    expect(a.config.backend.scheme).toBe('rpc');
    const add = a.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    const xsum = a.task({ name: 'tasks.xsum' }, (xs: number[]) => xs.reduce((p, x) => p + x, 0));
    const worker = new Worker(a, { concurrency: 2, logger: createLogger('silent') });
    open.push({ close: () => worker.stop() });
    await worker.start();
    expect(await (await add.delay(2, 3)).get({ timeout: 10_000 })).toBe(5);
    const err = (await a.send(chord([add.s(1, 1)], xsum.s())).catch((e: unknown) => e)) as CeleriacError;
    expect(err.code).toBe(ErrorCodes.CAPABILITY_MISSING);
    expect(err.message).toMatch(/chord .*rpc.*redis:\/\/ or sqlite:\/\//);
  });

  it('is refused at createApp with a broker that is not AMQP', () => {
    expect(() => createApp({ broker: 'memory://', backend: 'rpc://' })).toThrow(/rpc:\/\/ sends results as replies over an AMQP broker/);
  });

  it('the reply queue is declared as Celery declares it (auto-delete, x-expires one day)', async () => {
    const { url, name } = await vhost();
    const a = createApp({ broker: url });
    open.push(a);
    await a.sendTask('tasks.add', [1, 1]);
    await waitFor(async () => (await list(name, 'queues', 'name', 'auto_delete', 'arguments')).some((r) => r[0] === a.oid), 'reply queue declared');
    const row = (await list(name, 'queues', 'name', 'auto_delete', 'durable', 'arguments')).find((r) => r[0] === a.oid)!;
    expect(row.slice(1, 3)).toEqual(['true', 'false']);
    expect(row[3]).toMatch(/x-expires.*86400000/);
  });
});
