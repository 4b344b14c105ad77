import type { ResolvedTaskOptions } from '@celeriac/core/spi';

/** Celery's `default_retry_delay`: used by `ctx.retry()` without a countdown when no backoff is set. */
export const DEFAULT_RETRY_DELAY_MS = 180_000;

/**
 * Delay before retry number `retries + 1`, as Celery computes it:
 * `min(max, base * 2^retries)`, then full jitter (uniform in [0, delay]).
 */
export function retryDelay(options: ResolvedTaskOptions, retries: number, random: () => number = Math.random): number {
  if (options.retryBackoff === false) return DEFAULT_RETRY_DELAY_MS;
  const base = options.retryBackoff === true ? 1000 : options.retryBackoff;
  const delay = Math.min(options.retryBackoffMax, base * 2 ** retries);
  return options.retryJitter ? Math.floor(random() * (delay + 1)) : delay;
}

/** Whether a thrown value matches the task's `autoretryFor` list (error classes or predicates). */
export function shouldAutoretry(options: ResolvedTaskOptions, err: unknown): boolean {
  return options.autoretryFor.some((m) => {
    if (m.prototype instanceof Error || m === Error) return err instanceof (m as new () => Error);
    return (m as (e: unknown) => boolean)(err);
  });
}
