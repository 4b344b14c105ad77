/**
 * `amqp://`, `amqps://`: the transport itself — publishing (through the driver's confirm channel,
 * with broker-side delays), consuming (through {@link AmqpConsumer}), queries, the dead-letter
 * queue and notices. Topology, wire conversion and the consumer live beside it.
 */
import type { Channel, ChannelModel } from 'amqplib';
import { BrokerError, BrokerUnavailableError, CeleriacError, ErrorCodes, TransportClosedError } from '../../errors.js';
import type { WireMessage } from '../../protocol/message.js';
import { deadLetterRecord, pageBounds, type Consumer, type DeadLetterPage, type DeadLetterRecord, type Delivery, type PublishOptions, type Transport, type TransportCapabilities } from '../transport.js';
import type { ListenOptions, Notice, NoticeExchange, NotifyOptions } from '../notice.js';
import { AmqpSession, brokerReason, type AmqpSettings } from '../../drivers/amqp/session.js';
import { AmqpConsumer } from './consumer.js';
import type { QueueDeclaration } from './queue-declaration.js';
import { declareDelayQueue, declareQueue, Topology, type ResolvedQueue } from './topology.js';
import { amqpProperties, readDeadLetter } from './wire.js';

/** The dead-letter store: a durable queue (and fanout exchange, usable as a queue's `deadLetterExchange`). */
export const DEAD_LETTERS = 'celeriac.dead_letters';

export interface AmqpTransportOptions {
  readonly queues: Readonly<Record<string, Readonly<QueueDeclaration>>>;
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

  /**
   * Run a check on a channel of its own, within `publishTimeout`. A check of a missing queue closes
   * the channel it runs on (404): on the shared admin channel that would also fail the declarations
   * of every other caller on it (a notice's exchange, a publish's queue).
   */
  private async query<T>(queue: string, run: (ch: Channel) => Promise<T>, missing: T): Promise<T> {
    this.assertOpen();
    const deadline = Date.now() + this.session.settings.publishTimeoutMs;
    const ch = await this.session.open(`query ${queue}`, (m) => m.createChannel(), deadline);
    ch.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        run(ch),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(this.session.deadlineError(`query ${queue}`)), Math.max(0, deadline - Date.now())))),
      ]);
    } catch (err) {
      if (err instanceof CeleriacError) throw err;
      if (/NOT_FOUND/.test(brokerReason(err))) return missing;
      throw new BrokerUnavailableError(`${queue}: ${brokerReason(err)}`, {}, { cause: err });
    } finally {
      clearTimeout(timer);
      ch.close().catch(() => undefined);
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
   * Page through the dead-letter queue on a private channel: messages are fetched one at a time,
   * unacknowledged (up to the end of the page asked for, or until the one `take` acks), and closing
   * the channel puts them all back, in order. Only the page's records are decoded and kept (the
   * messages before the offset are fetched but not decoded), and a `take` keeps nothing but its
   * match, recognised by the id header, so the others are not decoded either.
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
        if (take !== undefined) {
          const header = (msg.properties.headers ?? {})['x-celeriac-dead-letter'];
          if (typeof header === 'string' && header !== take.id) continue;
          const record = readDeadLetter(msg);
          if (record.id === take.id && (take.failedAt === undefined || record.failedAt === take.failedAt)) {
            taken = record;
            ch.ack(msg);
            break;
          }
        } else if (!page || i >= page.offset) records.push(readDeadLetter(msg));
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
    return this.query(DEAD_LETTERS, async (ch) => (await ch.checkQueue(DEAD_LETTERS)).messageCount, 0);
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
      try {
        await bind(ch);
      } catch (err) {
        // The session runs this again (with backoff) until it succeeds: leave no half-bound channel behind.
        await ch.close().catch(() => undefined);
        throw err;
      }
      current = ch;
    };
    const bind = async (ch: Channel): Promise<void> => {
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
