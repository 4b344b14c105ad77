import { randomUUID } from 'node:crypto';
import { ErrorCodes, MessageError } from '../errors.js';
import { UNDECODABLE, type WireMessage } from './wire.js';

export { UNDECODABLE } from './wire.js';

/**
 * kombu's JSON envelope, as the Redis transport stores each list item (and
 * the memory transport serialises each message): the body base64-encoded,
 * `delivery_tag` a uuid chosen by the publisher.
 */
export interface KombuEnvelope {
  body: string;
  'content-encoding': string;
  'content-type': string;
  headers: Record<string, unknown>;
  properties: Record<string, unknown> & {
    delivery_info: { exchange: string; routing_key: string };
    body_encoding: 'base64';
    delivery_tag: string;
  };
}

export function toKombuEnvelope(
  wire: WireMessage,
  route: { exchange: string; routingKey: string },
  deliveryTag: string = randomUUID(),
): KombuEnvelope {
  const delivery_info = { exchange: route.exchange, routing_key: route.routingKey };
  // `properties` first, `delivery_tag` and `delivery_info` leading it: the Redis fetch script reads
  // them with one anchored match instead of decoding the envelope (JSON readers ignore key order).
  const properties: KombuEnvelope['properties'] = { delivery_tag: deliveryTag, delivery_info, ...wire.properties, body_encoding: 'base64' };
  // Set again: a key keeps its first place when assigned, and a stale tag in `wire.properties` must lose.
  properties.delivery_tag = deliveryTag;
  properties.delivery_info = delivery_info;
  return {
    properties,
    body: Buffer.from(wire.body, 'utf8').toString('base64'),
    'content-encoding': wire.contentEncoding,
    'content-type': wire.contentType,
    headers: { ...wire.headers },
  };
}

/**
 * Like {@link fromKombuEnvelope}, but never throws: transports deliver an
 * unreadable envelope as a message the worker refuses with its reason
 * (a transport must not stop consuming because of one bad message).
 */
export function readKombuEnvelope(text: string): { wire: WireMessage; deliveryTag: string; redelivered: boolean } {
  try {
    return fromKombuEnvelope(text);
  } catch (err) {
    return {
      wire: { body: text, contentType: UNDECODABLE, contentEncoding: 'utf-8', headers: {}, properties: { error: (err as Error).message } },
      deliveryTag: randomUUID(),
      redelivered: false,
    };
  }
}

/** Parse a kombu envelope's JSON text back into a wire message. */
export function fromKombuEnvelope(text: string): { wire: WireMessage; deliveryTag: string; redelivered: boolean } {
  let env: Partial<KombuEnvelope>;
  try {
    env = JSON.parse(text) as Partial<KombuEnvelope>;
  } catch (e) {
    throw new MessageError(`Message envelope is not valid JSON: ${(e as Error).message}`, {}, ErrorCodes.MESSAGE_MALFORMED, { cause: e });
  }
  if (!env || typeof env !== 'object' || Array.isArray(env) || typeof env.body !== 'string') {
    throw new MessageError('Message envelope is not a kombu envelope (an object with a string body)');
  }
  const props = (env.properties ?? {}) as Record<string, unknown>;
  const { delivery_info: _di, body_encoding, delivery_tag, redelivered, ...properties } = props;
  const body = body_encoding === 'base64' ? Buffer.from(env.body, 'base64').toString('utf8') : env.body;
  return {
    wire: {
      body,
      contentType: env['content-type'] ?? 'application/json',
      contentEncoding: env['content-encoding'] ?? 'utf-8',
      headers: env.headers ?? {},
      properties,
    },
    deliveryTag: typeof delivery_tag === 'string' ? delivery_tag : randomUUID(),
    redelivered: redelivered === true,
  };
}
