import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { buildTaskMessage, createApp, parseUrl, RedisTransport, redisSettings, toWire, type Delivery } from '@celeriac/core/spi';
import { startInProcessWorker } from '../helpers/in-process.js';
import { startRedis } from '../servers/redis.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The Redis fetch script reads celeriac's envelopes by one anchored match and decodes
 * every other one; delivery counts live in `celeriac.deliveries` only for messages
 * delivered before. These pin what both paths write, as kombu reads it.
 */
const base = inject('redisUrl');
let n = 0;
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

async function setup(visibilityTimeout = 1000, url = base) {
  const prefix = `fetch${process.pid}-${++n}:`;
  const settings = redisSettings(parseUrl('broker', `${url}?keyPrefix=${prefix}`, ['redis']));
  const raw = new Redis(url, { keyPrefix: prefix, lazyConnect: true });
  open.push({ close: async () => void raw.disconnect() });
  const make = async () => {
    const t = await RedisTransport.open(settings, { visibilityTimeout });
    open.push(t);
    return t;
  };
  return { raw, make };
}

async function take(t: RedisTransport, queue: string): Promise<{ got: Delivery[]; cancel: () => Promise<void> }> {
  const got: Delivery[] = [];
  const consumer = await t.consume([queue], (d) => got.push(d), { prefetch: 1 });
  await waitFor(() => got.length > 0, `a delivery from ${queue}`);
  return { got, cancel: () => consumer.cancel() };
}

/**
 * Age every unacked entry past the window and restore with `peer`, until the message is back in
 * `queue`. A cancelled consumer still renews what it holds (a live owner must), so a frozen owner is
 * played by aging its index entries; its next renewal may come first, hence the retries.
 */
async function restoreAsStale(raw: Redis, peer: RedisTransport, queue: string): Promise<void> {
  await waitFor(
    async () => {
      for (const tag of await raw.zrange('unacked_index', 0, -1)) await raw.zadd('unacked_index', 'XX', 0, tag);
      return (await peer.restoreVisible()) > 0 || (await raw.llen(queue)) > 0;
    },
    'a restore of the aged entry',
    10_000,
    20,
  );
}

const wire = (id: string) => toWire(buildTaskMessage({ task: 'tasks.add', id, args: [1, 2], kwargs: {} }));

describe('Redis fetch script', () => {
  it('records a celeriac envelope as kombu does: [envelope, exchange, routing key], and counts no first delivery', async () => {
    const { raw, make } = await setup();
    const t = await make();
    await t.publish('fq', wire('f1'));
    const [text] = await raw.lrange('fq', 0, -1);
    expect(text!.startsWith('{"properties":{"delivery_tag":"')).toBe(true);
    const tag = (JSON.parse(text!) as { properties: { delivery_tag: string } }).properties.delivery_tag;
    const { got } = await take(t, 'fq');
    expect(got[0]!.deliveryCount).toBe(1);
    expect(got[0]!.redelivered).toBe(false);
    const entry = JSON.parse((await raw.hget('unacked', tag))!) as [unknown, string, string];
    expect(entry).toEqual([JSON.parse(text!), '', 'fq']);
    expect(await raw.exists('celeriac.deliveries')).toBe(0);
    await got[0]!.ack();
    expect(await raw.hlen('unacked')).toBe(0);
  });

  it('decodes an envelope in Python key order (Celery 5.2.6 fixture) to the same tag and route', async () => {
    const { raw, make } = await setup();
    const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/celery-5.2/redis/task-delay.json'), 'utf8')) as {
      raw: { queue_keys: Record<string, string[]> };
    };
    const text = fixture.raw.queue_keys.celery![0]!;
    const env = JSON.parse(text) as { properties: { delivery_tag: string; delivery_info: { exchange: string; routing_key: string } } };
    await raw.lpush('pyq', text);
    const t = await make();
    const { got } = await take(t, 'pyq');
    expect(got[0]!.message.headers.task).toBeTypeOf('string');
    const entry = JSON.parse((await raw.hget('unacked', env.properties.delivery_tag))!) as [unknown, string, string];
    expect(entry).toEqual([env, env.properties.delivery_info.exchange, env.properties.delivery_info.routing_key]);
    await got[0]!.ack();
  });

  it('counts deliveries across a restore and a requeue, and forgets the count on ack', async () => {
    const { raw, make } = await setup();
    const owner = await make();
    const peer = await make();
    await owner.publish('cq', wire('c1'));
    const first = await take(owner, 'cq');
    // The owner's lease looks lapsed (as a frozen worker's would): a peer restores it.
    await first.cancel();
    await restoreAsStale(raw, peer, 'cq');
    const second = await take(peer, 'cq');
    expect(second.got[0]!.deliveryCount).toBe(2);
    expect(second.got[0]!.redelivered).toBe(true);
    await second.got[0]!.reject({ requeue: true });
    await waitFor(() => second.got.length === 2, 'the requeued delivery');
    expect(second.got[1]!.deliveryCount).toBe(3);
    await second.got[1]!.ack();
    expect(await raw.exists('celeriac.deliveries')).toBe(0);
    expect(await raw.hlen('unacked')).toBe(0);
  });

  it('a first delivery requeued comes back as the second', async () => {
    const { make } = await setup();
    const t = await make();
    await t.publish('rq', wire('r1'));
    const { got } = await take(t, 'rq');
    await got[0]!.reject({ requeue: true });
    await waitFor(() => got.length === 2, 'the requeued delivery');
    expect(got[1]!.deliveryCount).toBe(2);
    expect(got[1]!.redelivered).toBe(true);
    await got[1]!.ack();
  });

  it('a malformed envelope copying celeriac prefix is taken, restored as its own text, and delivered as undecodable', async () => {
    const { raw, make } = await setup();
    const bad = '{"properties":{"delivery_tag":"evil-1","delivery_info":{"exchange":"","routing_key":"mq"}, not json';
    await raw.lpush('mq', bad);
    const owner = await make();
    const first = await take(owner, 'mq');
    expect(first.got[0]!.message.contentType).toBe('application/x-celeriac-undecodable');
    await first.cancel();
    const peer = await make();
    await restoreAsStale(raw, peer, 'mq');
    expect(await raw.lrange('mq', 0, -1)).toEqual([bad]);
    const second = await take(peer, 'mq');
    expect(second.got[0]!.message.contentType).toBe('application/x-celeriac-undecodable');
    expect(second.got[0]!.message.body).toBe(bad);
    await second.got[0]!.ack();
  });

  it('an ack that did not reach Redis is sent again by a retry (the message is not left to be redelivered)', async () => {
    const server = await startRedis();
    open.push({ close: () => server.stop() });
    const { raw, make } = await setup(60_000, server.url);
    const t = await make();
    await t.publish('aq', wire('a1'));
    const { got } = await take(t, 'aq');
    await server.kill9();
    const first = await got[0]!.ack().then(() => 'acked', (err: unknown) => err);
    expect(first).toBeInstanceOf(Error);
    expect((first as Error).name).not.toBe('LeaseLostError');
    await server.restart();
    await waitFor(() => got[0]!.ack().then(() => true, () => false), 'the retried ack', 15_000, 100);
    await raw.connect();
    expect(await raw.hlen('unacked')).toBe(0);
    expect(await raw.llen('aq')).toBe(0);
  });

  it('an ack given just before the transport closes is sent, not failed against a closed connection (issue #15, 6)', async () => {
    const { raw, make } = await setup(60_000);
    const t = await make();
    await t.publish('cl', wire('c1'));
    const { got } = await take(t, 'cl');
    // Not awaited before the close, as a caller that drops its promise would (once an unhandled
    // 'Connection is closed.' rejection): the close waits for the ack batch.
    const ack = got[0]!.ack();
    await t.close();
    await ack;
    await raw.connect();
    expect(await raw.hlen('unacked')).toBe(0);
    expect(await raw.llen('cl')).toBe(0);
  });

  it('with early acks, wrong argument types still end in the dead-letter store (the record alone: the message is acked already)', async () => {
    const prefix = `early${process.pid}-${++n}:`;
    const url = `${base}?keyPrefix=${prefix}`;
    const app = createApp({ broker: url, backend: url, acksLate: false });
    open.push({ close: () => app.close() });
    app.task({ name: 'tasks.typed', args: z.tuple([z.number()]) }, (x: number) => x * 2);
    await startInProcessWorker(app, { concurrency: 1 });
    const sent = await app.sendTask('tasks.typed', ['not a number']);
    await expect(sent.get({ timeout: 10_000 })).rejects.toThrow();
    const transport = (await app.transport()) as RedisTransport;
    const dead = await waitFor(async () => (await transport.listDeadLetters()).find((d) => d.id === sent.id), 'the dead letter');
    expect(dead).toMatchObject({ reason: 'TASK_ARGS_INVALID', taskName: 'tasks.typed' });
    const raw = new Redis(base, { keyPrefix: prefix });
    open.push({ close: async () => void raw.disconnect() });
    expect(await raw.hlen('unacked')).toBe(0);
  });
});
