/**
 * One AMQP `consume` call: its channel (with `basic.qos`), re-created after a reconnect or a
 * channel error; delivery counting on classic queues (a redelivered message is copied with its
 * count); acks fenced by the channel and connection they came on; and cancel, after which
 * unacked deliveries stay owned (and ackable) on their channel until the transport closes.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { LeaseLostError } from '../../errors.js';
import type { WireMessage } from '../../protocol/message.js';
import { brokerReason, type AmqpSession, type Hook } from '../../drivers/amqp/session.js';
import type { Consumer, Delivery, PublishOptions } from '../transport.js';
import type { ResolvedQueue } from './topology.js';
import { DELIVERIES_HEADER, wireOf } from './wire.js';
import { HeldDelivery } from './held.js';

/** What a consumer needs of its transport. */
export interface AmqpConsumerHost {
  readonly session: AmqpSession;
  declare(queue: string): Promise<ResolvedQueue>;
  publish(queue: string, message: WireMessage, options?: PublishOptions, extraHeaders?: Record<string, unknown>): Promise<void>;
}

/**
 * Whether a consumer receives deliveries now. `consuming`: attached to every queue it was asked
 * for. `connecting`: no connection to the broker (it attaches once one is back). `failing`:
 * connected, but attaching failed (`error` says why) and is being retried with backoff.
 * `cancelled`: stopped on purpose.
 */
export interface ConsumerStatus {
  readonly state: 'consuming' | 'connecting' | 'failing' | 'cancelled';
  /** When it entered this state (epoch ms). */
  readonly since: number;
  readonly error?: string;
}

/**
 * One `consume` call: a channel with `basic.qos` (per channel, so it can change
 * while consuming, as Celery does), re-created after a reconnect or a channel error,
 * and retried (by the session) until it is attached again: never connected but idle.
 */
export class AmqpConsumer implements Consumer {
  private channel: Channel | undefined;
  private tags: { tag: string; queue: ResolvedQueue }[] = [];
  private global = true;
  private removeHook: (() => void) | undefined;
  private cancelled = false;
  private current: ConsumerStatus = { state: 'connecting', since: Date.now() };
  private readonly listeners = new Set<(status: ConsumerStatus) => void>();
  private readonly hook: Hook = (model) => this.attach(model);

  constructor(
    private readonly transport: AmqpConsumerHost,
    private readonly queues: readonly string[],
    private readonly onDelivery: (delivery: Delivery) => void,
    private prefetch: number,
  ) {}

  async start(): Promise<void> {
    this.removeHook = await this.transport.session.onConnect(this.hook);
  }

  /** Whether this consumer receives deliveries now (see {@link ConsumerStatus}). */
  status(): ConsumerStatus {
    return this.current;
  }

  /** Called on every change of {@link status} (the worker logs them). Returns its remover. */
  onStatus(listener: (status: ConsumerStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setStatus(state: ConsumerStatus['state'], error?: string): void {
    if (this.current.state === state && this.current.error === error) return;
    this.current = { state, since: Date.now(), ...(error !== undefined ? { error } : {}) };
    for (const l of this.listeners) l(this.current);
  }

  private async attach(model: ChannelModel): Promise<void> {
    if (this.cancelled) return;
    let ch: Channel | undefined;
    try {
      ch = await model.createChannel();
      await this.consumeOn(ch);
    } catch (err) {
      // Leave nothing half-attached (a channel consuming some of the queues): the session runs us again.
      if (ch && this.channel === ch) this.channel = undefined;
      ch?.close().catch(() => undefined);
      if (!this.cancelled) this.setStatus(this.transport.session.connected ? 'failing' : 'connecting', brokerReason(err));
      throw err;
    }
  }

  private async consumeOn(ch: Channel): Promise<void> {
    ch.on('error', () => undefined);
    ch.on('close', () => {
      if (this.channel !== ch || this.cancelled) return;
      this.channel = undefined;
      this.setStatus('connecting');
      // A channel error on a live connection: the session runs `attach` again on it, with retries. A lost
      // connection is not ours to mend: the reconnect runs `attach` for every consumer.
      this.transport.session.rerun(this.hook);
    });
    const generation = this.transport.session.currentGeneration;
    const queues: ResolvedQueue[] = [];
    for (const name of this.queues) queues.push(await this.transport.declare(name));
    // Channel-wide prefetch bounds all the queues together and can change while consuming (what Celery
    // uses); quorum queues refuse it, so with one of them the bound is per queue, set before consuming.
    this.global = !queues.some((q) => q.quorum);
    await ch.prefetch(this.prefetch, this.global);
    this.channel = ch;
    this.tags = [];
    for (const q of queues) await this.consumeOne(ch, generation, q);
    if (this.cancelled) {
      // Cancelled while attaching: stop what was just started.
      for (const { tag } of this.tags) await ch.cancel(tag).catch(() => undefined);
      return;
    }
    this.setStatus('consuming');
  }

  private async consumeOne(ch: Channel, generation: number, q: ResolvedQueue): Promise<void> {
    // A null message: the broker cancelled us (queue deleted); a fresh channel re-declares and consumes again.
    const { consumerTag } = await ch.consume(q.name, (msg) => (msg ? this.deliver(ch, generation, q, msg) : void ch.close().catch(() => undefined)), { noAck: false });
    this.tags.push({ tag: consumerTag, queue: q });
  }

  private deliver(ch: Channel, generation: number, q: ResolvedQueue, msg: ConsumeMessage): void {
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const wire = wireOf(msg);
    let count: number;
    const before = typeof headers[DELIVERIES_HEADER] === 'number' ? headers[DELIVERIES_HEADER] : 0;
    if (q.quorum) {
      // Quorum queues count returns themselves; a copy we published carries the count before it.
      count = before + (typeof headers['x-delivery-count'] === 'number' ? headers['x-delivery-count'] : 0) + 1;
    } else {
      if (msg.fields.redelivered) {
        // Classic queues only say "delivered before": record that delivery in a copy (confirmed, then this
        // one acked), so a message that keeps killing its worker is counted and finally dead-lettered.
        this.transport
          .publish(q.name, wire, {}, { [DELIVERIES_HEADER]: before + 1 })
          .then(() => this.isCurrent(ch, generation) && ch.ack(msg))
          .catch(() => undefined); // Not copied: it stays unacked and comes back again.
        return;
      }
      count = before + 1;
    }
    let acked = false;
    // Ack-then-track (held.ts): held for half the broker's consumer_timeout, the delivery moves off the
    // channel so the broker never closes it under a long task; from then on the held copy is the claim.
    let held: HeldDelivery | undefined;
    let tracking: Promise<void> | undefined;
    const holdMs = this.transport.session.settings.consumerTimeoutMs;
    const trackTimer = setTimeout(() => {
      if (acked || !this.isCurrent(ch, generation)) return;
      const h = new HeldDelivery(this.transport.session, q.name, msg, count, holdMs, this.transport.session.log);
      tracking = h.start().then(
        () => {
          if (acked) return void h.finish().catch(() => undefined);
          if (!this.isCurrent(ch, generation)) return void h.finish().catch(() => undefined); // The broker took it back meanwhile.
          ch.ack(msg);
          held = h;
        },
        (err: unknown) => this.transport.session.log(`could not move a long-held delivery off its channel (the broker may close it at consumer_timeout): ${(err as Error).message}`),
      );
    }, holdMs / 2);
    trackTimer.unref();
    const settle = async (): Promise<boolean> => {
      clearTimeout(trackTimer);
      await tracking;
      if (!held) return false;
      await held.finish();
      return true;
    };
    const delivery: Delivery = {
      message: wire,
      queue: q.name,
      redelivered: msg.fields.redelivered || count > 1,
      deliveryCount: count,
      ack: async () => {
        if (await settle()) return void (acked = true);
        if (!this.isCurrent(ch, generation)) throw new LeaseLostError(`ack of ${typeof wire.headers.id === 'string' ? wire.headers.id : 'a message'} on ${q.name}`);
        this.transport.session.coalesceWrites();
        ch.ack(msg);
        acked = true;
      },
      reject: async ({ requeue, delayMs }) => {
        const wasHeld = held !== undefined;
        if (!wasHeld) clearTimeout(trackTimer);
        await tracking;
        if (!held && !this.isCurrent(ch, generation)) return; // The broker has already put it back.
        if (!requeue) {
          if (held) return void (await settle());
          return ch.reject(msg, false);
        }
        // Sent again as a copy that carries its delivery count (confirmed first); then this one is acked.
        await this.transport.publish(q.name, wire, delayMs ? { notBefore: Date.now() + delayMs } : {}, { [DELIVERIES_HEADER]: count });
        if (!(await settle())) ch.ack(msg);
      },
      // The channel it came on is gone (a missed heartbeat, a reconnect): the broker has put it back
      // for another consumer, so this run writes no result. Best effort: a close not yet noticed is not seen.
      // Acked already (early acks), or held (the held copy is ours whatever the channel): nothing to fence.
      leaseHeld: async () => acked || held !== undefined || this.isCurrent(ch, generation),
    };
    this.onDelivery(delivery);
  }

  private isCurrent(ch: Channel, generation: number): boolean {
    return this.channel === ch && generation === this.transport.session.currentGeneration;
  }

  setPrefetch(count: number): void {
    this.prefetch = count;
    const ch = this.channel;
    if (!ch) return;
    const generation = this.transport.session.currentGeneration;
    const tags = this.tags.splice(0);
    void (async () => {
      await ch.prefetch(count, this.global);
      if (this.global) return void this.tags.push(...tags);
      // A per-consumer bound applies to new consumers: consume again (unacked deliveries stay owned).
      for (const { tag, queue } of tags) {
        await ch.cancel(tag);
        await this.consumeOne(ch, generation, queue);
      }
    })().catch(() => undefined);
  }

  /**
   * Close the channel (after cancelling). amqplib writes each channel's frames
   * on its own stream, so an ack written just before the connection closes can
   * be overtaken by the close and lost; a channel close is ordered after that
   * channel's acks, so closing channels first keeps every ack.
   */
  async close(): Promise<void> {
    await this.cancel();
    await this.channel?.close().catch(() => undefined);
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    this.removeHook?.();
    this.setStatus('cancelled');
    const ch = this.channel;
    // Stop receiving; unacked deliveries stay owned (and ackable) on this channel. Whatever is still
    // unacked when the transport closes goes back to its queue: the broker requeues it.
    for (const { tag } of this.tags) await ch?.cancel(tag).catch(() => undefined);
  }
}
