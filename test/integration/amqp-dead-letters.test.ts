/**
 * Issue #19 item 7: the AMQP dead-letter store is paged through, not loaded: a page from deep in a
 * 1,500-message queue holds just its records, in queue order; a take removes exactly its match; and
 * every message the scan fetched is back in the queue afterwards (nothing left unacked).
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { AMQP_DEAD_LETTERS as DEAD_LETTERS, AmqpTransport, createApp, type CeleriacApp, type DeadLetterRecord } from '@celeriac/core/spi';
import { freshVhost, rabbitCtl } from '../servers/rabbitmq.js';

const apps: CeleriacApp[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

const record = (i: number): DeadLetterRecord => ({
  id: `dl-${i}`,
  taskName: 'tasks.bad',
  queue: 'celery',
  reason: 'MESSAGE_MALFORMED',
  message: `record ${i}`,
  traceback: null,
  deliveryCount: 1,
  failedAt: 1_700_000_000_000 + i,
  wire: { headers: {}, body: '[]', contentType: 'application/json', contentEncoding: 'utf-8', properties: {} },
});

describe('AMQP dead letters', () => {
  it('lists a page from deep in a 1,500-message store (just that page, in order), takes one, and leaves every message in the queue', async () => {
    const node = inject('amqpNode');
    const vhost = `dl-${process.pid}-${Date.now()}`;
    const url = await freshVhost(inject('amqpUrl'), node, vhost);
    const client = createApp({ broker: url });
    apps.push(client);
    const transport = (await client.transport()) as AmqpTransport;
    expect(await transport.deadLetterCount()).toBe(0); // declares the store
    const total = 1500;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const r = record(i);
      writes.push(transport.session.publish('', DEAD_LETTERS, Buffer.from(JSON.stringify(r)), { contentType: 'application/json', deliveryMode: 2, headers: { 'x-celeriac-dead-letter': r.id }, mandatory: true }));
      if (writes.length >= 200) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    expect(await transport.deadLetterCount()).toBe(total);

    expect((await transport.listDeadLetters()).map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => `dl-${i}`));
    const deep = await transport.listDeadLetters({ offset: 1200, limit: 100 });
    expect(deep.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => `dl-${1200 + i}`));
    expect(deep[0]).toEqual(record(1200));

    const taken = await transport.takeDeadLetter('dl-1400');
    expect(taken?.id).toBe('dl-1400');
    expect(await transport.takeDeadLetter('dl-1400')).toBeUndefined();
    expect(await transport.deadLetterCount()).toBe(total - 1);
    expect((await transport.listDeadLetters({ offset: 1399, limit: 2 })).map((r) => r.id)).toEqual(['dl-1399', 'dl-1401']);

    const row = (await rabbitCtl(node, 'list_queues', '-p', vhost, '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged')).split('\n').find((l) => l.startsWith(`${DEAD_LETTERS}\t`));
    expect(row).toBe(`${DEAD_LETTERS}\t${total - 1}\t0`);
    await rabbitCtl(node, 'delete_vhost', vhost);
  }, 120_000);
});
