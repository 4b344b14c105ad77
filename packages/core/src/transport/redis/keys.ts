/** The Redis transport's key layout (kombu's names where kombu has one) and the small helpers over it. */
import { SEP } from '../../drivers/redis/scripts.js';

/** Keys this transport writes. kombu's names where kombu has one; celeriac's own are documented here. */
export const KEYS = {
  unacked: 'unacked',
  unackedIndex: 'unacked_index',
  unackedMutex: 'unacked_mutex',
  /** Delivery counts of messages delivered more than once (entry removed on ack; owner: this transport). */
  deliveries: 'celeriac.deliveries',
  /** Delayed messages (countdown, eta, retry), promoted by any worker when due (owner: this transport). */
  delayed: 'celeriac.delayed',
  /** Dead letters, id -> record (owner: operators, via `failed requeue|purge`). */
  deadLetters: 'celeriac.dead_letters',
  /** Dead-letter ids scored by when they failed (owner: the transport), so the store is listed a page at a time. */
  deadLetterIndex: 'celeriac.dead_letters.index',
  binding: (exchange: string) => `_kombu.binding.${exchange}`,
} as const;

/** Wake-up channel: publishers of celeriac ping it so idle consumers fetch at once. */
export const WAKE = 'celeriac.wake';

/** kombu's priority steps: 0 is served first on Redis. */
const STEPS = [0, 3, 6, 9] as const;

/** The list a message of `priority` goes to (kombu rounds down to a step). */
export function queueKey(queue: string, priority = 0): string {
  const step = [...STEPS].reverse().find((s) => priority >= s) ?? 0;
  return step ? `${queue}${SEP}${step}` : queue;
}

/** The lists a consumer of `queue` polls, in order: plain first, then 3, 6, 9. */
export const queueKeys = (queue: string): string[] => STEPS.map((s) => queueKey(queue, s));

/**
 * `unacked_index` scores: unix seconds as kombu writes them, but whole (rounded up, so an entry only
 * ever looks younger: restored up to 1 s late, never early). Redis keeps a small sorted set as a
 * listpack and parses every fractional score it passes on insert: a whole one is read as an integer
 * (ZADD into ~100 in-flight entries: 18 µs → under 2 µs).
 */
export const nowSeconds = (): number => Math.ceil(Date.now() / 1000);

/**
 * An `unacked` entry: JSON `[envelope, exchange, routing key]`. The fetch script embeds a celeriac
 * envelope's text without decoding it, so an entry can hold a malformed one (a hostile producer
 * copying celeriac's prefix): its text is then cut out as it is and goes back to be refused by a worker.
 */
export function readUnackedEntry(entry: string): [Record<string, unknown> | string, string, string] {
  try {
    return JSON.parse(entry) as [Record<string, unknown> | string, string, string];
  } catch {
    const cut = /^\[([\s\S]*), "([^"\\]*)", "([^"\\]*)"\]$/.exec(entry);
    return cut ? [cut[1]!, cut[2]!, cut[3]!] : [entry, '', ''];
  }
}
