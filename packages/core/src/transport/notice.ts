/**
 * Operations traffic — remote control and events — travels as transient
 * "notices" on named exchanges, declared as kombu declares them so Python
 * Celery's `celery inspect` and `celery events` share them with celeriac.
 * Task messages never go this way: notices are not acknowledged, not
 * persisted, and a notice nobody listens for is dropped (as on a broker).
 */

/** An exchange notices are published on. */
export interface NoticeExchange {
  readonly name: string;
  /** fanout: every bound queue; direct: queues bound with the exact routing key; topic: `*`/`#` word patterns. */
  readonly type: 'fanout' | 'direct' | 'topic';
  /** AMQP declaration (kombu's: the pidbox exchanges are transient, `celeryev` is durable). */
  readonly durable: boolean;
}

/** One notice as a listener receives it. */
export interface Notice {
  readonly payload: unknown;
  readonly routingKey: string;
  readonly headers: Readonly<Record<string, unknown>>;
}

export interface NotifyOptions {
  readonly headers?: Readonly<Record<string, unknown>>;
  /** Redis direct exchanges: the receiving list expires this long after the last notice (default 60 s). */
  readonly ttlMs?: number;
}

export interface ListenOptions {
  /** Name of the queue to bind (a reply queue Python also names); default: a private, generated one. */
  readonly queue?: string;
  /** The queue is deleted this long after its listener goes (AMQP `x-expires`). */
  readonly expiresMs?: number;
  /** Notices older than this are dropped unread (AMQP `x-message-ttl`). */
  readonly messageTtlMs?: number;
}

/** kombu's pidbox: commands are broadcast on this fanout exchange. */
export const PIDBOX: NoticeExchange = Object.freeze({ name: 'celery.pidbox', type: 'fanout', durable: false });
/** kombu's pidbox replies: a direct exchange, routed by the caller's oid. */
export const PIDBOX_REPLY: NoticeExchange = Object.freeze({ name: 'reply.celery.pidbox', type: 'direct', durable: false });
/** Celery's events exchange (topic; routing key = event type with `-` as `.`). */
export const EVENTS: NoticeExchange = Object.freeze({ name: 'celeryev', type: 'topic', durable: true });

/**
 * Does a queue bound with `bindingKey` receive a notice sent with `routingKey`?
 * AMQP's rules: topic words are dot-separated, `*` is exactly one word, `#` zero or more.
 */
export function bindingMatches(type: NoticeExchange['type'], bindingKey: string, routingKey: string): boolean {
  if (type === 'fanout') return true;
  if (type === 'direct') return bindingKey === routingKey;
  return topicMatch(bindingKey.split('.'), 0, routingKey.split('.'), 0);
}

function topicMatch(pattern: string[], p: number, words: string[], w: number): boolean {
  if (p === pattern.length) return w === words.length;
  const part = pattern[p];
  if (part === '#') {
    for (let skip = w; skip <= words.length; skip++) if (topicMatch(pattern, p + 1, words, skip)) return true;
    return false;
  }
  if (w === words.length) return false;
  return (part === '*' || part === words[w]) && topicMatch(pattern, p + 1, words, w + 1);
}
