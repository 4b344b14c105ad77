import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { connect as amqpConnect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { freshVhost } from '../servers/rabbitmq.js';
import { buildTaskMessage, createApp, SqliteTransport, toKombuEnvelope, toWire, type CeleriacApp } from '@celeriac/core/spi';
import { FIXTURE_APP, ROOT, startWorker } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const dir = tempDir('celeriac-hostile-');
let n = 0;
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

type Kind = 'sqlite' | 'redis' | 'amqp';

/**
 * A kombu envelope's text as a raw AMQP message (AMQP has no envelope: its body, content type,
 * encoding and headers are message fields); text that is no envelope becomes the whole body.
 */
const amqpChannels = new Map<string, Promise<{ conn: ChannelModel; ch: ConfirmChannel }>>();
afterEach(async () => {
  for (const opening of amqpChannels.values()) await (await opening).conn.close().catch(() => undefined);
  amqpChannels.clear();
});

async function rawAmqpPush(url: string, envelopeText: string): Promise<void> {
  let opening = amqpChannels.get(url);
  if (!opening) {
    opening = (async () => {
      const conn = await amqpConnect(url);
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue('celery', { durable: true });
      return { conn, ch };
    })();
    amqpChannels.set(url, opening);
  }
  const { ch } = await opening;
  let env: { body?: unknown; 'content-type'?: string; 'content-encoding'?: string; headers?: Record<string, unknown> } | undefined;
  try {
    env = JSON.parse(envelopeText) as typeof env;
  } catch {
    env = undefined;
  }
  const isEnvelope = !!env && typeof env === 'object' && !Array.isArray(env) && typeof env.body === 'string';
  const body = isEnvelope ? Buffer.from(env!.body as string, 'base64') : Buffer.from(envelopeText);
  const props = isEnvelope
    ? { contentType: env!['content-type'] ?? 'application/json', contentEncoding: env!['content-encoding'] ?? 'utf-8', headers: env!.headers ?? {} }
    : { contentType: 'application/json' };
  await new Promise<void>((resolve, reject) => ch.sendToQueue('celery', body, { ...props, deliveryMode: 2 }, (err) => (err ? reject(err as Error) : resolve())));
}

async function world(kind: Kind) {
  const id = ++n;
  const path = join(dir, `h${id}.db`);
  const prefix = `hostile${process.pid}-${id}:`;
  const vhost = kind === 'amqp' ? await freshVhost(inject('amqpUrl'), inject('amqpNode'), `hostile-${process.pid}-${id}`) : '';
  const url = kind === 'sqlite' ? `sqlite://${path}` : kind === 'redis' ? `${inject('redisUrl')}?keyPrefix=${prefix}` : vhost;
  const backend = kind === 'amqp' ? inject('redisUrl').replace(/\/0$/, `/${(id % 15) + 1}`) : url;
  const client = createApp({ broker: url, backend });
  clients.push(client);
  /** Write a raw item straight into the broker's queue, bypassing every encoder: an SQL insert, a raw LPUSH, a raw AMQP publish. */
  const rawPush = async (envelopeText: string): Promise<void> => {
    if (kind === 'amqp') return rawAmqpPush(url, envelopeText);
    if (kind === 'redis') {
      const raw = new Redis(inject('redisUrl'));
      await raw.lpush(`${prefix}celery`, envelopeText);
      raw.disconnect();
      return;
    }
    const t = await SqliteTransport.open(path, { visibilityTimeout: 30_000 });
    t.db.prepare('INSERT INTO messages (queue, priority, due_at, envelope) VALUES (?, 0, 0, ?)').run('celery', envelopeText);
    await t.close();
  };
  return { rawPush, url, client, env: { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend, CELERIAC_LOGLEVEL: 'info' } };
}

function envelope(id: string, task: string, patch: { body?: string; contentType?: string; contentEncoding?: string; headers?: Record<string, unknown> } = {}) {
  const wire = toWire(buildTaskMessage({ task, id, args: [1, 2], kwargs: {} }));
  const env = toKombuEnvelope({ ...wire, ...(patch.body !== undefined ? { body: patch.body } : {}) }, { exchange: '', routingKey: 'celery' });
  return JSON.stringify({
    ...env,
    'content-type': patch.contentType ?? env['content-type'],
    'content-encoding': patch.contentEncoding ?? env['content-encoding'],
    headers: { ...env.headers, ...patch.headers },
  });
}

const b64 = (buf: Buffer | string): string => Buffer.from(buf).toString('base64');

describe.each(['sqlite', 'redis', 'amqp'] as const)('hostile messages straight onto the queue over %s (T27 at CI size)', (kind) => {
  it('every bad message is dead-lettered once with a specific code; the worker neither crashes nor stops; no prototype pollution', async () => {
    const { rawPush, client, env } = await world(kind);
    const deep = `[${'['.repeat(100_000)}${']'.repeat(100_000)}, {}, {}]`;
    const bad: [string, string, string][] = [
      ['bad-json', '{"body": "not base64 json', 'MESSAGE_MALFORMED'],
      ['array-not-envelope', '[1, 2, 3]', 'MESSAGE_MALFORMED'],
      ['non-utf8', JSON.stringify({ ...JSON.parse(envelope('non-utf8', 'tasks.add')), body: b64(Buffer.from([0xff, 0xfe, 0x80, 0x81])) }), 'MESSAGE_MALFORMED'],
      ['empty-body', JSON.stringify({ ...JSON.parse(envelope('empty-body', 'tasks.add')), body: '' }), 'MESSAGE_MALFORMED'],
      ['no-task-header', envelope('no-task-header', 'tasks.add', { headers: { task: undefined } }), 'MESSAGE_MALFORMED'],
      ['pickle', envelope('pickle', 'tasks.add', { contentType: 'application/x-python-serialize' }), 'CONTENT_TYPE_REJECTED'],
      ['msgpack', envelope('msgpack', 'tasks.add', { contentType: 'application/x-msgpack' }), 'CONTENT_TYPE_REJECTED'],
      ['yaml', envelope('yaml', 'tasks.add', { contentType: 'text/yaml' }), 'CONTENT_TYPE_REJECTED'],
      ['gzip', JSON.stringify({ ...JSON.parse(envelope('gzip', 'tasks.add', { contentEncoding: 'gzip' })), body: b64(gzipSync(Buffer.alloc(10 * 1024 * 1024))) }), 'CONTENT_TYPE_REJECTED'],
      ['too-deep', envelope('too-deep', 'tasks.add', { body: deep }), 'MESSAGE_TOO_DEEP'],
      ['name-proto', envelope('name-proto', '__proto__'), 'TASK_UNKNOWN'],
      ['name-constructor', envelope('name-constructor', 'constructor'), 'TASK_UNKNOWN'],
      ['name-tostring', envelope('name-tostring', 'toString'), 'TASK_UNKNOWN'],
    ];
    // Pollution attempts that are valid messages: they must run, and pollute nothing.
    const pollute = ['{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}'];
    const probes: string[] = [];
    for (const [i, payload] of pollute.entries()) {
      const argsId = `pollute-args-${i}`;
      await rawPush(envelope(argsId, 'tasks.probe', { body: `[[${payload}], ${payload}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]` }));
      const headersId = `pollute-headers-${i}`;
      await rawPush(envelope(headersId, 'tasks.probe', { headers: JSON.parse(payload) as Record<string, unknown> }));
      probes.push(argsId, headersId);
    }
    const good: string[] = [];
    for (let i = 0; i < 200; i++) {
      // One bad message every 15 good ones.
      const b = i % 15 === 0 ? bad[i / 15] : undefined;
      if (b) await rawPush(b[1]);
      const id = `good-${i}`;
      await rawPush(envelope(id, 'tasks.add'));
      good.push(id);
    }
    const worker = await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    for (const id of good) expect(await client.asyncResult(id).get({ timeout: 30_000 })).toBe(3);
    for (const id of probes) expect(await client.asyncResult(id).get({ timeout: 10_000 })).toBe(true);
    const transport = await client.transport();
    const dead = await waitFor(async () => {
      const list = await transport.listDeadLetters();
      return list.length >= bad.length ? list : undefined;
    }, 'all bad messages dead-lettered');
    expect(dead).toHaveLength(bad.length);
    for (const [id, , code] of bad.filter(([id]) => !['bad-json', 'array-not-envelope'].includes(id))) {
      expect(dead.filter((d) => d.id === id).map((d) => d.reason), id).toEqual([code]);
    }
    // The two envelopes with no readable id are there under generated ids, with their reason.
    expect(dead.filter((d) => !bad.some(([id]) => id === d.id)).map((d) => d.reason)).toEqual(['MESSAGE_MALFORMED', 'MESSAGE_MALFORMED']);
    expect(dead.every((d) => d.deliveryCount === 1)).toBe(true);
    // Same process throughout, and still serving.
    expect(worker.proc.exitCode).toBeNull();
    expect(await (await client.sendTask<boolean>('tasks.probe', [])).get({ timeout: 5000 })).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe.each(['sqlite', 'redis'] as const)('unknown task names during a rolling deploy over %s (T28 at CI size)', (kind) => {
  it('nothing is discarded: parked in the dead-letter store, one warning per name, all complete once after the new worker and a requeue', async () => {
    const { client, env } = await world(kind);
    const v1 = await startWorker(['-A', FIXTURE_APP, '-c', '4'], env);
    const sent = [];
    for (let i = 0; i < 50; i++) sent.push(await client.sendTask<string>('reports.v2', [i]));
    const transport = await client.transport();
    await waitFor(async () => (await transport.listDeadLetters()).length === 50, 'all 50 parked');
    await v1.waitForOutput(/unregistered task \\"reports\.v2\\"/);
    expect(v1.output().match(/unregistered task \\"reports\.v2\\"/g)).toHaveLength(1);
    v1.proc.kill('SIGTERM');
    await v1.exited;
    await startWorker(['-A', join(ROOT, 'test', 'fixtures', 'apps', 'v2.ts'), '-c', '4'], env);
    expect(await client.requeueDeadLetters()).toBe(50);
    const results = await Promise.all(sent.map((r) => r.get({ timeout: 30_000 })));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => `report ${i}`));
    expect(await transport.listDeadLetters()).toEqual([]);
  });
});
