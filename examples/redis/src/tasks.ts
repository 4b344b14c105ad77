/**
 * The tasks of the Redis example. Both sides import this module: the worker
 * (`celeriac worker -A dist/tasks.js`) to run the tasks, the client
 * (`node dist/client.js`) for their typed handles.
 *
 * CELERIAC_BROKER_URL  where the queues and results live (default redis://localhost:6379/0).
 *                      `?keyPrefix=myapp:` keeps this app's keys apart on a shared Redis.
 */
import { createApp, type TaskContext } from '@celeriac/core';

// An explicit broker wins over CELERIAC_BROKER_URL, so read the variable here and fall back to a local Redis.
// Results go to the same Redis (the default when the broker can store them).
export const app = createApp({
  name: 'redis-example',
  broker: process.env.CELERIAC_BROKER_URL ?? 'redis://localhost:6379/0',
});

/** What the payment gateway throws when it is slow: worth retrying, unlike a declined card. */
export class GatewayTimeout extends Error {
  override readonly name = 'GatewayTimeout';
}

export interface Receipt {
  orderId: string;
  cents: number;
  attempts: number;
}

/**
 * Charge an order. A real gateway times out now and then; this one times out on the first two attempts so the
 * example prints the same thing every run. `autoretryFor` turns a GatewayTimeout into a retry: a new message for
 * the same task id, delayed in Redis (200 ms, then 400 ms: `retryBackoff` doubles), never held in worker memory.
 * Any other error fails the task at once.
 */
export const charge = app.task(
  { name: 'payments.charge', autoretryFor: [GatewayTimeout], maxRetries: 5, retryBackoff: 200, retryJitter: false },
  function (this: TaskContext, orderId: string, cents: number): Receipt {
    if (this.retries < 2) {
      this.log.warn(`gateway timed out charging ${orderId} (attempt ${this.retries + 1})`);
      throw new GatewayTimeout(`gateway timed out (attempt ${this.retries + 1})`);
    }
    return { orderId, cents, attempts: this.retries + 1 };
  },
);

/** Count the words of one document: one chord member per document, run in parallel by the workers. */
export const countWords = app.task({ name: 'text.count_words' }, (text: string): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) counts[word] = (counts[word] ?? 0) + 1;
  return counts;
});

/**
 * The chord's body: runs once, after every member finished, with their results in order (the join is atomic
 * in Redis, so it runs exactly once even with many workers). Returns the `top` most frequent words.
 */
export const mergeCounts = app.task({ name: 'text.merge_counts' }, (counts: Record<string, number>[], top: number): [string, number][] => {
  const total: Record<string, number> = {};
  for (const c of counts) for (const [word, n] of Object.entries(c)) total[word] = (total[word] ?? 0) + n;
  return Object.entries(total)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .slice(0, top);
});
