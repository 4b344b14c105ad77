/**
 * Wire messages as AMQP carries them: the publish properties of a message (Celery's), the message
 * inside a delivery (broker-added headers removed), and a dead-letter record read back from the
 * dead-letter queue (celeriac's own, or one the broker dead-lettered).
 */
import type { ConsumeMessage, Options } from 'amqplib';
import { ErrorCodes } from '../../errors.js';
import type { WireMessage } from '../../protocol/message.js';
import type { DeadLetterRecord } from '../transport.js';

/** Deliveries that began before this copy was published (classic queues count redeliveries this way). */
export const DELIVERIES_HEADER = 'x-celeriac-deliveries';
/** Headers RabbitMQ adds on its own; core never sees them. */
const BROKER_HEADERS = new Set(['x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'x-delivery-count', DELIVERIES_HEADER]);

/** amqplib properties for a wire message (Celery's: persistent, correlation id = task id, reply_to, priority). */
export function amqpProperties(wire: WireMessage, extraHeaders: Record<string, unknown> = {}): Options.Publish {
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
export function wireOf(msg: ConsumeMessage): WireMessage {
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

/** A dead-letter message as a record; messages the broker itself dead-lettered (x-death) are described from their headers. */
export function readDeadLetter(msg: { content: Buffer; properties: { headers?: Record<string, unknown> | undefined } }): DeadLetterRecord {
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
