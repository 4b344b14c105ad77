import type { Channel, ChannelModel, ConsumeMessage, Options } from 'amqplib';
import type { QueueDeclaration } from '../../app/config.js';
import { BrokerError, ErrorCodes, LeaseLostError, TransportClosedError } from '../../errors.js';
import type { WireMessage } from '../../protocol/message.js';
import { deadLetterRecord, pageBounds, type Consumer, type DeadLetterPage, type DeadLetterRecord, type Delivery, type PublishOptions, type Transport, type TransportCapabilities } from '../transport.js';
import type { ListenOptions, Notice, NoticeExchange, NotifyOptions } from '../notice.js';
import { AmqpSession, brokerReason, type AmqpSettings } from './connection.js';
import { declareDelayQueue, declareQueue, Topology, type ResolvedQueue } from './topology.js';

/** Deliveries that began before this copy was published (classic queues count redeliveries this way). */
const DELIVERIES_HEADER = 'x-celeriac-deliveries';
/** Headers RabbitMQ adds on its own; core never sees them. */
const BROKER_HEADERS = new Set(['x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'x-delivery-count', DELIVERIES_HEADER]);

/** The dead-letter store: a durable queue (and fanout exchange, usable as a queue's `deadLetterExchange`). */
export const DEAD_LETTERS = 'celeriac.dead_letters';

export interface AmqpTransportOptions {
  readonly queues: Readonly<Record<string, Readonly<QueueDeclaration>>>;
}

/** amqplib properties for a wire message (Celery's: persistent, correlation id = task id, reply_to, priority). */
function amqpProperties(wire: WireMessage, extraHeaders: Record<string, unknown> = {}): Options.Publish {
  const p = wire.properties;
  return {
    contentType: wire.contentType,
    contentEncoding: wire.contentEncoding,
    headers: { ...wire.headers, ...extraHeaders },
    deliveryMode: typeof p.delivery_mode === 'number' ? p.delivery_mode : 2,
    priority: typeof p.priority === 'number' ? p.priority : 0,
    ...(typeof p.correlation_id === 'string' ? { correlationId: p.correlation_id } : {}),
    ...(typeof p.reply_to === 'string' ? { replyTo: p.reply_to } : {}),
    ...(typeof p.expiration === 'string' ? { expiration: p.expiration } : {}),
  };
}

/** The wire message inside a delivered AMQP message (broker-added headers removed). */
function wireOf(msg: ConsumeMessage): WireMessage {
  const p = msg.properties;
  const raw = (p.headers ?? {}) as Record<string, unknown>;
  let headers = raw;
  for (const k in raw) {
    if (BROKER_HEADERS.has(k)) {
      headers = Object.fromEntries(Object.entries(raw).filter(([key]) => !BROKER_HEADERS.has(key)));
      break;
    }
  }
  return {
    body: msg.content.toString('utf8'),
    contentType: (p.contentType as string | undefined) ?? 'application/json',
    contentEncoding: (p.contentEncoding as string | undefined) ?? 'utf-8',
    headers,
    properties: {
      ...(p.correlationId !== undefined ? { correlation_id: p.correlationId as string } : {}),
      ...(p.replyTo !== undefined ? { reply_to: p.replyTo as string } : {}),
      delivery_mode: (p.deliveryMode as number | undefined) ?? 2,
      priority: (p.priority as number | undefined) ?? 0,
    },
  };
}

/**
 * `amqp://` and `amqps://` through amqplib: Celery's topology (durable direct
 * exchange and queue per name, publishing through the default exchange),
 * persistent messages through a confirm channel (`publish` resolves on the
 * broker's ack; unroutable is an error), manual acks with prefetch, broker-side
 * delays through TTL-and-dead-letter queues, and recovery after a drop.
 */
export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  readonly capabilities: TransportCapabilities = Object.freeze({
    priorities: 'highFirst',
    delayedDelivery: true,
    fanout: true,
    confirms: true,
    visibilityTimeout: false,
    durable: true,
    crossProcess: true,
  });
  readonly topology: Topology;
  private readonly delayDeclared = new Map<string, number>();
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly subscriptions = new Set<() => Promise<void>>();
  private closed = false;

  private constructor(
    readonly session: AmqpSession,
    options: AmqpTransportOptions,
  ) {
    this.topology = new Topology(options.queues);
  }

  static async open(settings: AmqpSettings, options: AmqpTransportOptions): Promise<AmqpTransport> {
    return new AmqpTransport(await AmqpSession.open(settings), options);
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportClosedError('AMQP transport');
  }

  async declare(queue: string): Promise<ResolvedQueue> {
    const q = this.topology.queue(queue);
    await declareQueue(this.session, q);
    return q;
  }

  async publish(queue: string, message: WireMessage, options: PublishOptions = {}, extraHeaders: Record<string, unknown> = {}): Promise<void> {
    this.assertOpen();
    const content = Buffer.from(message.body, 'utf8');
    const props = amqpProperties(message, extraHeaders);
    if (options.priority !== undefined) props.priority = options.priority;
    const send = async (): Promise<void> => {
      const q = await this.declare(queue);
      const target = this.topology.target(q, options.exchange, options.routingKey);
      const delay = options.notBefore !== undefined ? options.notBefore - Date.now() : 0;
      if (delay > 0) {
        const holder = await declareDelayQueue(this.session, target, delay, this.delayDeclared);
        await this.session.publish('', holder, content, { ...props, expiration: String(Math.ceil(delay)), mandatory: true });
      } else {
        await this.session.publish(target.exchange, target.routingKey, content, { ...props, mandatory: true });
      }
    };
    try {
      await send();
    } catch (err) {
      // The queue may have been deleted behind our back: declare it again and try once more.
      if (!(err instanceof BrokerError) || err.code !== ErrorCodes.UNROUTABLE) throw err;
      this.session.declared.delete(`queue:${queue}`);
      await send();
    }
  }

  async consume(queues: readonly string[], onDelivery: (delivery: Delivery) => void, options: { prefetch: number }): Promise<Consumer> {
    this.assertOpen();
    const consumer = new AmqpConsumer(this, queues, onDelivery, options.prefetch);
    this.consumers.add(consumer);
    await consumer.start();
    return consumer;
  }

  private async query<T>(queue: string, run: (ch: Channel) => Promise<T>, missing: T): Promise<T> {
    this.assertOpen();
    const ch = await this.session.adminChannel();
    try {
      return await run(ch);
    } catch (err) {
      if (/NOT_FOUND/.test(brokerReason(err))) return missing;
      throw new BrokerError(ErrorCodes.BROKER_UNAVAILABLE, `${queue}: ${brokerReason(err)}`);
    }
  }

  purge(queue: string): Promise<number> {
    return this.query(queue, async (ch) => (await ch.purgeQueue(queue)).messageCount, 0);
  }

  length(queue: string): Promise<number> {
    return this.query(queue, async (ch) => (await ch.checkQueue(queue)).messageCount, 0);
  }

  private async declareDeadLetters(): Promise<void> {
    if (this.session.declared.has(`queue:${DEAD_LETTERS}`)) return;
    const ch = await this.session.adminChannel();
    await ch.assertExchange(DEAD_LETTERS, 'fanout', { durable: true });
    await ch.assertQueue(DEAD_LETTERS, { durable: true });
    await ch.bindQueue(DEAD_LETTERS, DEAD_LETTERS, '');
    this.session.declared.add(`queue:${DEAD_LETTERS}`);
  }

  async deadLetter(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): Promise<void> {
    this.assertOpen();
    await this.declareDeadLetters();
    const full = deadLetterRecord(delivery, record);
    // Stored (confirmed) first, then acked: a crash in between leaves a duplicate entry, never a lost one.
    await this.session.publish('', DEAD_LETTERS, Buffer.from(JSON.stringify(full)), {
      contentType: 'application/json',
      deliveryMode: 2,
      headers: { 'x-celeriac-dead-letter': full.id },
      mandatory: true,
    });
    await delivery.ack();
  }

  /**
   * Read the dead-letter queue on a private channel: messages are fetched unacknowledged (up to the
   * end of the page asked for, or until the one `take` acks), and closing the channel puts the rest back.
   */
  private async scanDeadLetters(
    take?: { id: string; failedAt?: number | undefined },
    page?: { offset: number; limit: number },
  ): Promise<{ records: DeadLetterRecord[]; taken?: DeadLetterRecord }> {
    this.assertOpen();
    await this.declareDeadLetters();
    const model = await this.session.ready('dead letters');
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    const records: DeadLetterRecord[] = [];
    let taken: DeadLetterRecord | undefined;
    try {
      const { messageCount } = await ch.checkQueue(DEAD_LETTERS);
      const end = page ? Math.min(messageCount, page.offset + page.limit) : messageCount;
      for (let i = 0; i < end; i++) {
        const msg = await ch.get(DEAD_LETTERS, { noAck: false });
        if (!msg) break;
        const record = readDeadLetter(msg);
        if (take !== undefined && !taken && record.id === take.id && (take.failedAt === undefined || record.failedAt === take.failedAt)) {
          taken = record;
          ch.ack(msg);
          break;
        } else if (!page || i >= page.offset) records.push(record);
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
    return taken ? { records, taken } : { records };
  }

  async listDeadLetters(page?: DeadLetterPage): Promise<DeadLetterRecord[]> {
    return (await this.scanDeadLetters(undefined, pageBounds(page))).records;
  }

  async deadLetterCount(): Promise<number> {
    this.assertOpen();
    await this.declareDeadLetters();
    const ch = await this.session.adminChannel();
    return (await ch.checkQueue(DEAD_LETTERS)).messageCount;
  }

  async takeDeadLetter(id: string, options: { failedAt?: number } = {}): Promise<DeadLetterRecord | undefined> {
    return (await this.scanDeadLetters({ id, failedAt: options.failedAt })).taken;
  }

  /** Declared as kombu declares them (auto_delete off), so Python's declarations of the same names match. */
  private async declareExchange(ch: Channel, exchange: NoticeExchange): Promise<void> {
    const key = `exchange:${exchange.name}`;
    if (this.session.declared.has(key)) return;
    await ch.assertExchange(exchange.name, exchange.type, { durable: exchange.durable, autoDelete: false });
    this.session.declared.add(key);
  }

  async notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options: NotifyOptions = {}): Promise<void> {
    this.assertOpen();
    await this.declareExchange(await this.session.adminChannel(), exchange);
    await this.session.publish(exchange.name, routingKey, Buffer.from(JSON.stringify(payload)), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 1,
      headers: { ...options.headers },
    });
  }

  async listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
    this.assertOpen();
    let current: Channel | undefined;
    const args: Record<string, number> = {};
    if (options.expiresMs !== undefined) args['x-expires'] = options.expiresMs;
    if (options.messageTtlMs !== undefined) args['x-message-ttl'] = options.messageTtlMs;
    const attach = async (model: ChannelModel): Promise<void> => {
      const ch = await model.createChannel();
      ch.on('error', () => undefined);
      await ch.assertExchange(exchange.name, exchange.type, { durable: exchange.durable, autoDelete: false });
      // A named queue is what a Python peer names too (a pidbox reply queue); otherwise a private one.
      const { queue } = await ch.assertQueue(options.queue ?? '', { exclusive: options.queue === undefined, autoDelete: true, durable: false, arguments: args });
      await ch.bindQueue(queue, exchange.name, bindingKey);
      await ch.consume(
        queue,
        (msg) => {
          if (!msg) return;
          let payload: unknown;
          try {
            payload = JSON.parse(msg.content.toString('utf8'));
          } catch {
            return; // Not JSON: not ours to read.
          }
          onNotice({ payload, routingKey: msg.fields.routingKey, headers: (msg.properties.headers ?? {}) });
        },
        { noAck: true },
      );
      current = ch;
    };
    const remove = await this.session.onConnect(attach);
    const unlisten = async (): Promise<void> => {
      remove();
      this.subscriptions.delete(unlisten);
      const ch = current;
      if (ch && options.queue !== undefined) await ch.deleteQueue(options.queue).catch(() => undefined);
      await ch?.close().catch(() => undefined);
    };
    this.subscriptions.add(unlisten);
    return unlisten;
  }

  /** Delayed messages wait in TTL queues that are not listed here: not counted. */
  async delayedCount(): Promise<null> {
    return null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.consumers]) await c.close();
    for (const u of [...this.subscriptions]) await u();
    await this.session.close();
  }
}

/** A dead-letter message as a record; messages the broker itself dead-lettered (x-death) are described from their headers. */
function readDeadLetter(msg: { content: Buffer; properties: { headers?: Record<string, unknown> | undefined } }): DeadLetterRecord {
  const headers = msg.properties.headers ?? {};
  if (headers['x-celeriac-dead-letter'] !== undefined) return JSON.parse(msg.content.toString('utf8')) as DeadLetterRecord;
  const wire = wireOf(msg as ConsumeMessage);
  const deaths = (headers['x-death'] as { reason?: string; queue?: string; count?: number }[] | undefined) ?? [];
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined);
  const reason = text(headers['x-first-death-reason']) ?? deaths[0]?.reason ?? 'unknown';
  return {
    id: typeof wire.headers.id === 'string' ? wire.headers.id : `broker-${Date.now()}`,
    taskName: typeof wire.headers.task === 'string' ? wire.headers.task : null,
    queue: text(headers['x-first-death-queue']) ?? deaths[0]?.queue ?? '',
    reason: reason === 'delivery_limit' ? ErrorCodes.WORKER_LOST : `BROKER_${reason.toUpperCase()}`,
    message: `dead-lettered by the broker (${reason})`,
    traceback: null,
    deliveryCount: deaths.reduce((n, d) => n + (d.count ?? 0), 0),
    failedAt: Date.now(),
    wire,
  };
}

/**
 * One `consume` call: a channel with `basic.qos` (per channel, so it can change
 * while consuming, as Celery does), re-created after a reconnect or a channel error.
 */
class AmqpConsumer implements Consumer {
  private channel: Channel | undefined;
  private tags: { tag: string; queue: ResolvedQueue }[] = [];
  private global = true;
  private removeHook: (() => void) | undefined;
  private cancelled = false;

  constructor(
    private readonly transport: AmqpTransport,
    private readonly queues: readonly string[],
    private readonly onDelivery: (delivery: Delivery) => void,
    private prefetch: number,
  ) {}

  async start(): Promise<void> {
    this.removeHook = await this.transport.session.onConnect((model) => this.attach(model));
  }

  private async attach(model: ChannelModel): Promise<void> {
    if (this.cancelled) return;
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    const opened = this.transport.session.currentGeneration;
    ch.on('close', () => {
      if (this.channel !== ch || this.cancelled) return;
      this.channel = undefined;
      // A channel error on a live connection: open another channel on it. A lost connection is not ours
      // to mend: the reconnect runs `attach` for every consumer (doing it here too would consume twice).
      setTimeout(() => {
        this.transport.session.ready('consume').then((m) => {
          if (this.cancelled || this.channel || this.transport.session.currentGeneration !== opened) return;
          return this.attach(m);
        }, () => undefined);
      }, 200);
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
    const delivery: Delivery = {
      message: wire,
      queue: q.name,
      redelivered: msg.fields.redelivered || count > 1,
      deliveryCount: count,
      ack: async () => {
        if (!this.isCurrent(ch, generation)) throw new LeaseLostError(`ack of ${typeof wire.headers.id === 'string' ? wire.headers.id : 'a message'} on ${q.name}`);
        this.transport.session.coalesceWrites();
        ch.ack(msg);
        acked = true;
      },
      reject: async ({ requeue, delayMs }) => {
        if (!this.isCurrent(ch, generation)) return; // The broker has already put it back.
        if (!requeue) return ch.reject(msg, false);
        // Sent again as a copy that carries its delivery count (confirmed first); then this one is acked.
        await this.transport.publish(q.name, wire, delayMs ? { notBefore: Date.now() + delayMs } : {}, { [DELIVERIES_HEADER]: count });
        ch.ack(msg);
      },
      // The channel it came on is gone (a missed heartbeat, a reconnect): the broker has put it back
      // for another consumer, so this run writes no result. Best effort: a close not yet noticed is not seen.
      // Acked already (early acks): nothing to fence.
      leaseHeld: async () => acked || this.isCurrent(ch, generation),
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
    const ch = this.channel;
    // Stop receiving; unacked deliveries stay owned (and ackable) on this channel. Whatever is still
    // unacked when the transport closes goes back to its queue: the broker requeues it.
    for (const { tag } of this.tags) await ch?.cancel(tag).catch(() => undefined);
  }
}
