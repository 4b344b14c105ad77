import { TransportClosedError } from '../../errors.js';
import { readKombuEnvelope, toKombuEnvelope } from '../../protocol/kombu.js';
import type { WireMessage } from '../../protocol/message.js';
import {
  deadLetterRecord,
  pageBounds,
  type DeadLetterPage,
  type Consumer,
  type DeadLetterRecord,
  type Delivery,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
} from '../transport.js';
import { bindingMatches, type Notice, type NoticeExchange, type NotifyOptions } from '../notice.js';
import { memoryBroker, type BrokerConsumer, type MemoryBroker, type StoredMessage } from './broker.js';

/**
 * `memory://[name]`: an in-process broker for tests and one-process apps.
 * Every message is serialised to kombu's envelope and parsed on delivery, and
 * the worker runs its real loop against it — this is not an eager shortcut.
 */
export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  readonly capabilities: TransportCapabilities = Object.freeze({
    priorities: 'highFirst',
    delayedDelivery: true,
    fanout: true,
    confirms: true,
    visibilityTimeout: false,
    durable: false,
    crossProcess: false,
  });
  private readonly broker: MemoryBroker;
  private readonly consumers = new Set<MemoryConsumer>();
  private closed = false;

  constructor(name: string) {
    this.broker = memoryBroker(name);
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportClosedError('memory transport');
  }

  async publish(queue: string, message: WireMessage, options: PublishOptions = {}): Promise<void> {
    this.assertOpen();
    const stored: StoredMessage = {
      text: JSON.stringify(toKombuEnvelope(message, { exchange: '', routingKey: queue })),
      priority: options.priority ?? 0,
      deliveryCount: 0,
    };
    if (options.notBefore !== undefined && options.notBefore > Date.now()) {
      this.broker.enqueueAt(options.notBefore, queue, stored);
    } else {
      this.broker.enqueue(queue, stored);
    }
  }

  async consume(queues: readonly string[], onDelivery: (d: Delivery) => void, options: { prefetch: number }): Promise<Consumer> {
    this.assertOpen();
    const consumer = new MemoryConsumer(this.broker, [...queues], options.prefetch, onDelivery, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    this.broker.addConsumer(consumer);
    return consumer;
  }

  async purge(queue: string): Promise<number> {
    return this.broker.purge(queue);
  }

  async length(queue: string): Promise<number> {
    return this.broker.length(queue);
  }

  async deadLetter(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): Promise<void> {
    this.broker.deadLetters.set(record.id, deadLetterRecord(delivery, record));
    await delivery.ack();
  }

  async listDeadLetters(page?: DeadLetterPage): Promise<DeadLetterRecord[]> {
    const { offset, limit } = pageBounds(page);
    return [...this.broker.deadLetters.values()].sort((a, b) => a.failedAt - b.failedAt).slice(offset, offset + limit);
  }

  async deadLetterCount(): Promise<number> {
    return this.broker.deadLetters.size;
  }

  async takeDeadLetter(id: string, options: { failedAt?: number } = {}): Promise<DeadLetterRecord | undefined> {
    const record = this.broker.deadLetters.get(id);
    if (!record || (options.failedAt !== undefined && record.failedAt !== options.failedAt)) return undefined;
    this.broker.deadLetters.delete(id);
    return record;
  }

  async notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options: NotifyOptions = {}): Promise<void> {
    this.assertOpen();
    const text = JSON.stringify({ payload, headers: options.headers ?? {} });
    for (const l of this.broker.listeners) {
      if (l.exchange !== exchange.name || !bindingMatches(exchange.type, l.bindingKey, routingKey)) continue;
      // Each listener gets its own parsed copy, as over a wire.
      queueMicrotask(() => {
        const { payload: p, headers } = JSON.parse(text) as { payload: unknown; headers: Record<string, unknown> };
        l.onNotice({ payload: p, headers, routingKey });
      });
    }
  }

  async listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void): Promise<() => Promise<void>> {
    this.assertOpen();
    const listener = { exchange: exchange.name, bindingKey, onNotice };
    this.broker.listeners.add(listener);
    return async () => {
      this.broker.listeners.delete(listener);
    };
  }

  async delayedCount(): Promise<number> {
    return this.broker.delayedCount();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A closed connection returns what it had not acknowledged, as a broker does.
    for (const consumer of [...this.consumers]) consumer.abandon();
  }
}

class MemoryConsumer implements Consumer, BrokerConsumer {
  /** Unacked deliveries and the queue each came from. */
  private readonly inFlight = new Map<StoredMessage, string>();
  private active = true;

  constructor(
    private readonly broker: MemoryBroker,
    readonly queues: readonly string[],
    private prefetch: number,
    private readonly onDelivery: (d: Delivery) => void,
    private readonly onGone: () => void,
  ) {}

  hasCredit(): boolean {
    return this.active && this.inFlight.size < this.prefetch;
  }

  deliver(queue: string, stored: StoredMessage): void {
    this.inFlight.set(stored, queue);
    let settled = false;
    const settle = (then: () => void): Promise<void> => {
      if (settled || !this.inFlight.has(stored)) return Promise.resolve();
      settled = true;
      this.inFlight.delete(stored);
      then();
      this.broker.pump();
      return Promise.resolve();
    };
    const { wire } = readKombuEnvelope(stored.text);
    const delivery: Delivery = {
      message: wire,
      queue,
      redelivered: stored.deliveryCount > 1,
      deliveryCount: stored.deliveryCount,
      ack: () => settle(() => undefined),
      reject: ({ requeue, delayMs }) =>
        settle(() => {
          if (!requeue) return;
          if (delayMs) this.broker.enqueueAt(Date.now() + delayMs, queue, stored);
          else this.broker.enqueue(queue, stored, true);
        }),
    };
    // Deliver asynchronously so a handler never runs inside publish().
    setImmediate(() => this.onDelivery(delivery));
  }

  setPrefetch(count: number): void {
    this.prefetch = count;
    this.broker.pump();
  }

  async cancel(): Promise<void> {
    this.active = false;
    this.broker.removeConsumer(this);
    this.onGone();
  }

  /** The connection is gone: everything unacked goes back to its queue. */
  abandon(): void {
    void this.cancel();
    for (const [stored, queue] of this.inFlight) this.broker.enqueue(queue, stored, true);
    this.inFlight.clear();
  }
}
