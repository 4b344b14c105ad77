/**
 * The app's `queues` option: how a queue is declared on an AMQP broker. Its own module so the
 * configuration, the transport registry and the AMQP transport share it without importing each other.
 */
import { z } from 'zod';

/**
 * How a queue is declared on an AMQP broker (kombu's `Queue(name, Exchange(...), routing_key)`).
 * Without an entry, a queue is declared as Celery declares it: durable, bound to a durable
 * direct exchange of the same name with its name as routing key, no arguments — so Python
 * Celery and celeriac declare the same thing. Redis and SQLite ignore these.
 */
export const queueSchema = z
  .strictObject({
    /** Exchange the queue is bound to; default the queue's name. */
    exchange: z.string().min(1).optional(),
    exchangeType: z.enum(['direct', 'topic', 'fanout']).default('direct'),
    /** Binding key (topic patterns allowed); default the queue's name. */
    routingKey: z.string().optional(),
    durable: z.boolean().default(true),
    /** `x-max-priority`: makes priorities work on this queue (1–255; 10 is plenty). */
    maxPriority: z.number().int().min(1).max(255).optional(),
    /** `x-queue-type`: `quorum` for replicated queues with broker-side delivery counting. */
    type: z.enum(['classic', 'quorum']).optional(),
    /** `x-delivery-limit` (quorum only): deliveries before the broker dead-letters a message. */
    deliveryLimit: z.number().int().min(1).optional(),
    /** `x-dead-letter-exchange` (and routing key) for messages the broker rejects or expires. */
    deadLetterExchange: z.string().optional(),
    deadLetterRoutingKey: z.string().optional(),
    /** Any other `x-` argument, passed as given. */
    arguments: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((q) => q.deliveryLimit === undefined || q.type === 'quorum', { message: 'deliveryLimit needs type: "quorum"' })
  .refine((q) => !(q.type === 'quorum' && q.durable === false), { message: 'a quorum queue is always durable' });

export type QueueDeclaration = z.output<typeof queueSchema>;
