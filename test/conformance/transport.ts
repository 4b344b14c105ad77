import { afterEach, describe, expect, it } from 'vitest';
import { buildTaskMessage, toWire, type Delivery, type Transport, type WireMessage } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';

/** What a conformance setup provides: clients of one fresh broker namespace. */
export interface TransportSetup {
  /** A fresh client of this setup's namespace (each call another process, in real deployments). */
  make: () => Promise<Transport>;
  /**
   * Transports with `capabilities.visibilityTimeout`: a client of the same kind with a short
   * visibility window of `visibilityTimeout` ms, so a test can outlast the window.
   */
  lease?: { visibilityTimeout: number; make: () => Promise<Transport> };
}

/**
 * The Transport conformance suite: every transport runs it. `setup` returns a
 * fresh broker namespace whose `make` opens clients of it.
 */
export function transportConformance(name: string, setup: () => Promise<TransportSetup>): void {
  describe(`Transport conformance: ${name}`, () => {
    const open: Transport[] = [];
    const client = async (make: () => Promise<Transport>) => {
      const t = await make();
      open.push(t);
      return t;
    };
    afterEach(async () => {
      for (const t of open.splice(0)) await t.close();
    });

    const msg = (id: string, extra: Partial<Parameters<typeof buildTaskMessage>[0]> = {}): WireMessage =>
      toWire(buildTaskMessage({ task: 'tasks.add', id, args: [1, 2], kwargs: { k: 'ü' }, ...extra }));

    /** Collect deliveries into an array; returns it and the consumer. */
    async function collect(t: Transport, queues: string[], prefetch: number) {
      const got: Delivery[] = [];
      const consumer = await t.consume(queues, (d) => got.push(d), { prefetch });
      return { got, consumer };
    }

    it('delivers a published message intact, once', async () => {
      const { make } = await setup();
      const t = await client(make);
      const sent = msg('m1', { priority: 0 });
      await t.publish('q1', sent);
      const { got } = await collect(t, ['q1'], 10);
      await waitFor(() => got.length === 1, 'one delivery');
      const d = got[0]!;
      expect(d.queue).toBe('q1');
      expect(d.redelivered).toBe(false);
      expect(d.deliveryCount).toBe(1);
      expect(d.message.body).toBe(sent.body);
      expect(d.message.headers).toEqual(sent.headers);
      expect(d.message.properties).toMatchObject(sent.properties);
      expect(d.message.contentType).toBe('application/json');
      await d.ack();
      expect(await t.length('q1')).toBe(0);
    });

    it('never holds more unacked deliveries than the prefetch', async () => {
      const { make } = await setup();
      const t = await client(make);
      for (let i = 0; i < 5; i++) await t.publish('q', msg(`p${i}`));
      const { got } = await collect(t, ['q'], 2);
      await waitFor(() => got.length === 2, 'two deliveries');
      // Give the transport a chance to over-deliver before checking it did not.
      await waitFor(async () => (await t.length('q')) === 3, 'three still queued');
      expect(got).toHaveLength(2);
      await got[0]!.ack();
      await waitFor(() => got.length === 3, 'a third after one ack');
      expect(await t.length('q')).toBe(2);
    });

    it('reject with requeue redelivers with redelivered=true and a higher delivery count; without requeue drops it', async () => {
      const { make } = await setup();
      const t = await client(make);
      await t.publish('rq', msg('r1'));
      const { got } = await collect(t, ['rq'], 1);
      await waitFor(() => got.length === 1, 'first delivery');
      await got[0]!.reject({ requeue: true });
      await waitFor(() => got.length === 2, 'redelivery');
      expect(got[1]!.redelivered).toBe(true);
      expect(got[1]!.deliveryCount).toBe(2);
      expect(got[1]!.message.headers.id).toBe('r1');
      await got[1]!.reject({ requeue: false });
      expect(await t.length('rq')).toBe(0);
    });

    it('serves several queues, preferring the first listed when both have messages', async () => {
      const { make } = await setup();
      const t = await client(make);
      await t.publish('low', msg('l1'));
      await t.publish('high', msg('h1'));
      const { got } = await collect(t, ['high', 'low'], 1);
      await waitFor(() => got.length === 1, 'first');
      expect(got[0]!.message.headers.id).toBe('h1');
      await got[0]!.ack();
      await waitFor(() => got.length === 2, 'second');
      expect(got[1]!.message.headers.id).toBe('l1');
    });

    it('honours priority as its capabilities declare', async () => {
      const { make } = await setup();
      const t = await client(make);
      const order = t.capabilities.priorities;
      if (order === false) {
        expect(order).toBe(false);
        return;
      }
      await t.publish('prio', msg('p0'), { priority: 0 });
      await t.publish('prio', msg('p9'), { priority: 9 });
      await t.publish('prio', msg('p5'), { priority: 5 });
      const { got } = await collect(t, ['prio'], 1);
      const ids: string[] = [];
      while (ids.length < 3) {
        await waitFor(() => got.length === ids.length + 1, 'next delivery');
        const d = got[ids.length]!;
        ids.push(String(d.message.headers.id));
        await d.ack();
      }
      expect(ids).toEqual(order === 'highFirst' ? ['p9', 'p5', 'p0'] : ['p0', 'p5', 'p9']);
    });

    it('holds a delayed message until its time, broker-side', async () => {
      const { make } = await setup();
      const t = await client(make);
      expect(t.capabilities.delayedDelivery).toBe(true);
      const due = Date.now() + 300;
      await t.publish('later', msg('d1'), { notBefore: due });
      expect(await t.length('later')).toBe(0);
      const { got } = await collect(t, ['later'], 1);
      await waitFor(() => got.length === 1, 'delayed delivery', 5000);
      expect(Date.now()).toBeGreaterThanOrEqual(due - 5);
    });

    it('purges and counts ready messages', async () => {
      const { make } = await setup();
      const t = await client(make);
      for (let i = 0; i < 3; i++) await t.publish('pq', msg(`x${i}`));
      expect(await t.length('pq')).toBe(3);
      expect(await t.purge('pq')).toBe(3);
      expect(await t.length('pq')).toBe(0);
    });

    it('moves a delivery to the dead-letter store with its reason, and gives it back by id', async () => {
      const { make } = await setup();
      const t = await client(make);
      await t.publish('dq', msg('dead1'));
      const { got } = await collect(t, ['dq'], 1);
      await waitFor(() => got.length === 1, 'delivery');
      await t.deadLetter(got[0]!, { id: 'dead1', taskName: 'tasks.add', reason: 'TASK_UNKNOWN', message: 'nope', traceback: null, failedAt: 1 });
      const list = await t.listDeadLetters();
      expect(list).toEqual([expect.objectContaining({ id: 'dead1', reason: 'TASK_UNKNOWN', queue: 'dq', deliveryCount: 1 })]);
      expect(list[0]!.wire.headers.id).toBe('dead1');
      expect(await t.length('dq')).toBe(0);
      const taken = await t.takeDeadLetter('dead1');
      expect(taken?.id).toBe('dead1');
      expect(await t.listDeadLetters()).toEqual([]);
    });

    it('lists dead letters a page at a time, oldest first, with a count', async () => {
      const { make } = await setup();
      const t = await client(make);
      for (let i = 0; i < 7; i++) await t.publish('pq', msg(`page${i}`));
      const { got } = await collect(t, ['pq'], 7);
      await waitFor(() => got.length === 7, 'deliveries');
      // Oldest first: the order they failed in (AMQP keeps them in a queue, so time order is arrival order).
      const order: string[] = [];
      for (const [i, d] of got.entries()) {
        const id = String(d.message.headers.id);
        order.push(id);
        await t.deadLetter(d, { id, taskName: 'tasks.add', reason: 'TASK_UNKNOWN', message: 'nope', traceback: null, failedAt: 1000 + i });
      }
      expect(await t.deadLetterCount()).toBe(7);
      const first = await t.listDeadLetters({ limit: 3 });
      const second = await t.listDeadLetters({ offset: 3, limit: 3 });
      const last = await t.listDeadLetters({ offset: 6, limit: 3 });
      expect([...first, ...second, ...last].map((r) => r.id)).toEqual(order);
      expect(await t.listDeadLetters({ offset: 7 })).toEqual([]);
      await t.takeDeadLetter(order[1]!);
      expect((await t.listDeadLetters({ limit: 3 })).map((r) => r.id)).toEqual([order[0], order[2], order[3]]);
      expect(await t.deadLetterCount()).toBe(6);
    });

    it('fans a notice out to every listener, with its headers', async () => {
      const { make } = await setup();
      const a = await client(make);
      const b = await client(make);
      const seen: unknown[] = [];
      const fanout = { name: 'conf.fanout', type: 'fanout', durable: false } as const;
      await a.listen(fanout, '', (n) => seen.push(['a', n.payload, n.headers.clock]));
      await b.listen(fanout, '', (n) => seen.push(['b', n.payload, n.headers.clock]));
      await a.notify(fanout, '', { method: 'ping' }, { headers: { clock: 7 } });
      await waitFor(() => seen.length === 2, 'both listeners');
      expect(seen).toContainEqual(['a', { method: 'ping' }, 7]);
      expect(seen).toContainEqual(['b', { method: 'ping' }, 7]);
    });

    it('routes direct notices by exact key and topic notices by word pattern', async () => {
      const { make } = await setup();
      const a = await client(make);
      const b = await client(make);
      const direct = { name: 'conf.reply', type: 'direct', durable: false } as const;
      const topic = { name: 'conf.events', type: 'topic', durable: true } as const;
      const got: string[] = [];
      const stopMine = await a.listen(direct, 'oid-1', (n) => got.push(`mine:${String(n.payload)}`), { queue: `oid-1.${direct.name}` });
      await a.listen(direct, 'oid-2', (n) => got.push(`other:${String(n.payload)}`), { queue: `oid-2.${direct.name}` });
      await a.listen(topic, 'task.#', (n) => got.push(`task:${n.routingKey}`));
      await a.listen(topic, '*.heartbeat', (n) => got.push(`hb:${n.routingKey}`));
      await b.notify(direct, 'oid-1', 'r1');
      await b.notify(topic, 'task.succeeded', { type: 'task-succeeded' });
      await b.notify(topic, 'worker.heartbeat', { type: 'worker-heartbeat' });
      await waitFor(() => got.length === 3, 'three routed notices');
      expect(got.sort()).toEqual(['hb:worker.heartbeat', 'mine:r1', 'task:task.succeeded']);
      // Once unbound, a direct queue receives nothing more (and nothing is left behind for it).
      await stopMine();
      await b.notify(direct, 'oid-1', 'r2');
      await b.notify(direct, 'oid-2', 'r3');
      await waitFor(() => got.length === 4, 'the other queue\'s notice');
      expect(got).toContain('other:r3');
      expect(got).not.toContain('mine:r2');
    });

    it('shares a queue between consumers: each message goes to exactly one', async () => {
      const { make } = await setup();
      const a = await client(make);
      const b = await client(make);
      const ids: string[] = [];
      const acks: Promise<void>[] = [];
      const onDelivery = (d: Delivery) => {
        ids.push(String(d.message.headers.id));
        acks.push(d.ack());
      };
      await a.consume(['shared'], onDelivery, { prefetch: 2 });
      await b.consume(['shared'], onDelivery, { prefetch: 2 });
      for (let i = 0; i < 20; i++) await a.publish('shared', msg(`s${i}`));
      await waitFor(() => ids.length === 20, 'all twenty');
      expect(new Set(ids).size).toBe(20);
      // Every ack observed: one left to fail after the close would be an unhandled rejection.
      await Promise.all(acks);
    });

    it('reject with requeue after delayMs redelivers it once the delay has passed, not before', async () => {
      const { make } = await setup();
      const t = await client(make);
      // A queue of its own: the delayed-message test above leaves its delivery unacknowledged in 'later'.
      await t.publish('later-again', msg('r1'));
      const { got } = await collect(t, ['later-again'], 1);
      await waitFor(() => got.length === 1, 'the first delivery');
      const at = Date.now();
      await got[0]!.reject({ requeue: true, delayMs: 300 });
      await waitFor(() => got.length === 2, 'the delayed redelivery', 10_000);
      expect(Date.now() - at).toBeGreaterThanOrEqual(250);
      expect(got[1]!.message.headers.id).toBe('r1');
      expect(got[1]!.redelivered).toBe(true);
      expect(got[1]!.deliveryCount).toBe(2);
      await got[1]!.ack();
    });

    it('after cancel, a delivery held before it stays owned until acked: renewed past its window, never handed on, ackable; nothing new arrives', async () => {
      const ready = await setup();
      const leased = ready.lease;
      const probe = await client(ready.make);
      // Declared by capability: a transport with a visibility window must offer a short one to outlast.
      if (probe.capabilities.visibilityTimeout) expect(leased).toBeDefined();
      const make = probe.capabilities.visibilityTimeout ? leased!.make : ready.make;
      const t = await client(make);
      const peer = await client(make);
      await t.publish('own', msg('held'));
      const mine = await collect(t, ['own'], 1);
      await waitFor(() => mine.got.length === 1, 'the delivery held before cancel');
      const held = mine.got[0]!;
      await mine.consumer.cancel();

      // Another consumer of the queue, with room to spare: it takes whatever the queue hands out.
      const seen: string[] = [];
      const peerAcks: Promise<void>[] = [];
      await peer.consume(['own'], (d) => {
        seen.push(String(d.message.headers.id));
        peerAcks.push(d.ack());
      }, { prefetch: 10 });
      await t.publish('own', msg('after-cancel'));
      await waitFor(() => seen.includes('after-cancel'), 'the peer to take a message sent after the cancel');
      if (probe.capabilities.visibilityTimeout) {
        // Outlast the window several times over (plus a second: Redis scores leases in whole seconds
        // and restores on a period): a lease not renewed after the cancel would have been handed on.
        const until = Date.now() + 3 * leased!.visibilityTimeout + 1000;
        await waitFor(() => seen.includes('held') || Date.now() >= until, 'the visibility window to pass', 3 * leased!.visibilityTimeout + 10_000);
        expect(await held.leaseHeld?.()).toBe(true);
      }
      expect(seen).not.toContain('held');
      await held.ack();

      // Cancelled: nothing new comes to it, even with its slot free again.
      await t.publish('own', msg('after-ack'));
      await waitFor(() => seen.includes('after-ack'), 'the peer to take the message sent after the ack');
      expect(mine.got.map((d) => d.message.headers.id)).toEqual(['held']);
      expect(seen).not.toContain('held');
      await Promise.all(peerAcks);
      expect(await t.length('own')).toBe(0);
    });

    it('returns unacknowledged deliveries to the queue when their client closes', async () => {
      const { make } = await setup();
      const a = await make();
      const b = await client(make);
      await b.publish('cq', msg('c1'));
      const { got } = await collect(a, ['cq'], 1);
      await waitFor(() => got.length === 1, 'delivery to a');
      await a.close();
      const again = await collect(b, ['cq'], 1);
      await waitFor(() => again.got.length === 1, 'redelivery to b', 15_000);
      expect(again.got[0]!.redelivered).toBe(true);
      // A late ack from the closed client must not throw or remove b's delivery.
      await got[0]!.ack().catch(() => undefined);
      await again.got[0]!.ack();
    });
  });
}
