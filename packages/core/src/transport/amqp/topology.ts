/**
 * Celery's AMQP topology: how a queue is declared (the app's `queues` option over Celery's
 * defaults), where a message for it is published, and the TTL-and-dead-letter queues that hold
 * delayed messages.
 */
import { BrokerError, BrokerUnavailableError, ErrorCodes } from '../../errors.js';
import { brokerReason, type AmqpSession } from '../../drivers/amqp/session.js';
import type { QueueDeclaration } from './queue-declaration.js';

/** A queue as it is declared on the broker: Celery's defaults filled in, arguments spelled out. */
export interface ResolvedQueue {
  readonly name: string;
  readonly exchange: string;
  readonly exchangeType: 'direct' | 'topic' | 'fanout';
  readonly routingKey: string;
  readonly durable: boolean;
  readonly arguments: Readonly<Record<string, unknown>>;
  readonly quorum: boolean;
}

/** Where a message for a queue is published: Celery sends to a direct queue through the default exchange. */
export interface Target {
  readonly exchange: string;
  readonly routingKey: string;
}

/** Queues, exchanges and arguments celeriac declares, from the app's `queues` option. */
export class Topology {
  private readonly cache = new Map<string, ResolvedQueue>();

  constructor(private readonly declarations: Readonly<Record<string, Readonly<QueueDeclaration>>>) {}

  /** A queue's declaration: the configured one, or Celery's default (durable, direct exchange of the same name). */
  queue(name: string): ResolvedQueue {
    let q = this.cache.get(name);
    if (!q) {
      const d = this.declarations[name];
      const args: Record<string, unknown> = { ...d?.arguments };
      if (d?.maxPriority !== undefined) args['x-max-priority'] = d.maxPriority;
      if (d?.type !== undefined) args['x-queue-type'] = d.type;
      if (d?.deliveryLimit !== undefined) args['x-delivery-limit'] = d.deliveryLimit;
      if (d?.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = d.deadLetterExchange;
      if (d?.deadLetterRoutingKey !== undefined) args['x-dead-letter-routing-key'] = d.deadLetterRoutingKey;
      q = Object.freeze({
        name,
        exchange: d?.exchange ?? name,
        exchangeType: d?.exchangeType ?? 'direct',
        routingKey: d?.routingKey ?? name,
        durable: d?.durable ?? true,
        arguments: Object.freeze(args),
        quorum: args['x-queue-type'] === 'quorum',
      });
      this.cache.set(name, q);
    }
    return q;
  }

  /** Where to publish a message for `queue` (as Celery does: direct queues through the default exchange). */
  target(q: ResolvedQueue, exchange?: string, routingKey?: string): Target {
    if (exchange !== undefined) return { exchange, routingKey: routingKey ?? q.routingKey };
    return q.exchangeType === 'direct' ? { exchange: '', routingKey: q.name } : { exchange: q.exchange, routingKey: q.routingKey };
  }
}

/**
 * Declare a queue, its exchange and the binding, once per connection. A queue
 * that already exists with other settings is a {@link BrokerError} `QUEUE_MISMATCH`
 * that quotes what RabbitMQ found different — not a closed channel.
 */
export async function declareQueue(session: AmqpSession, q: ResolvedQueue): Promise<void> {
  const key = `queue:${q.name}`;
  if (session.declared.has(key)) return;
  const ch = await session.adminChannel();
  try {
    if (q.exchange !== '') await ch.assertExchange(q.exchange, q.exchangeType, { durable: q.durable, autoDelete: false });
    await ch.assertQueue(q.name, { durable: q.durable, autoDelete: false, exclusive: false, arguments: q.arguments });
    if (q.exchange !== '') await ch.bindQueue(q.name, q.exchange, q.routingKey);
  } catch (err) {
    const reason = brokerReason(err);
    if (/PRECONDITION_FAILED|inequivalent/i.test(reason)) {
      throw new BrokerError(
        ErrorCodes.QUEUE_MISMATCH,
        `Queue ${JSON.stringify(q.name)} (or its exchange) already exists on the broker with other settings: ${reason}. ` +
          `Declare it the same way (the app's "queues" option) or delete it first.`,
        { queue: q.name, declared: { durable: q.durable, arguments: q.arguments, exchange: q.exchange, exchangeType: q.exchangeType } },
      );
    }
    throw new BrokerUnavailableError(`Declaring queue ${JSON.stringify(q.name)} failed: ${reason}`, { queue: q.name }, { cause: err });
  }
  session.declared.add(key);
}

/**
 * Delays are bucketed so a busy app uses few delay queues: up to 16 ms exactly,
 * then 16 steps per doubling (each bucket ≤ 6.25 % wider than the one before).
 * Every message still carries its exact delay as its own TTL, so a bucket only
 * bounds how late a message can be held behind an older, longer one at the head.
 */
export function delayBucket(delayMs: number): number {
  const d = Math.max(1, Math.ceil(delayMs));
  if (d <= 16) return d;
  const octave = 2 ** Math.floor(Math.log2(d));
  const step = octave / 16;
  return Math.ceil(d / step) * step;
}

/** Redeclare a delay queue at least this often: its `x-expires` counts from the last declaration. */
const DELAY_REDECLARE_MS = 60_000;
/** A delay queue outlives its last declaration by this much beyond its bucket, so no message in it is ever dropped. */
const DELAY_QUEUE_GRACE_MS = 600_000;

/**
 * The TTL-and-dead-letter queue that holds a message for `delayMs` and then
 * hands it to `target` (no plugin needed): per-message TTL, dead-lettered on
 * expiry to the target's exchange and routing key. Idle delay queues delete
 * themselves (`x-expires`), and are redeclared before that can strand a message.
 */
export async function declareDelayQueue(session: AmqpSession, target: Target, delayMs: number, lastDeclared: Map<string, number>): Promise<string> {
  const bucket = delayBucket(delayMs);
  const name = `celeriac.delay.${bucket}ms.${target.exchange ? `${target.exchange}.` : ''}${target.routingKey}`;
  const key = `${session.currentGeneration}:${name}`;
  const at = lastDeclared.get(key);
  if (at === undefined || Date.now() - at > DELAY_REDECLARE_MS) {
    const ch = await session.adminChannel();
    await ch.assertQueue(name, {
      durable: true,
      arguments: {
        'x-dead-letter-exchange': target.exchange,
        'x-dead-letter-routing-key': target.routingKey,
        'x-expires': bucket + DELAY_QUEUE_GRACE_MS,
      },
    });
    if (lastDeclared.size > 10_000) lastDeclared.clear();
    lastDeclared.set(key, Date.now());
  }
  return name;
}
