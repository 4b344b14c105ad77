import { ArgumentError } from '@celeriac/core/spi';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `'10/s'` → ms between two runs (100). */
export function rateIntervalMs(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)\/(s|m|h)$/.exec(rate);
  if (!m) throw new ArgumentError(`invalid rate limit ${JSON.stringify(rate)}; expected '<n>/s', '<n>/m' or '<n>/h'`, { rate });
  return UNIT_MS[m[2] as keyof typeof UNIT_MS] / Number(m[1]);
}

/**
 * Per-task rate limits for one worker, as evenly spaced slots (a token bucket
 * of depth 1): `reserve` books the next free slot and says how long to wait for
 * it. A task that must wait is sent back to the broker with that delay rather
 * than held here, so it occupies no execution slot and is never held past its
 * visibility window. Limits can change at run time (remote control `rate_limit`).
 */
export class RateLimiter {
  private readonly next = new Map<string, number>();
  private readonly overrides = new Map<string, number | null>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Set (or with null, lift) a task's limit at run time. */
  set(taskName: string, rate: string | null): void {
    this.overrides.set(taskName, rate === null ? null : rateIntervalMs(rate));
  }

  /** Book a slot: 0 = run now; otherwise ms until the booked slot. */
  reserve(taskName: string, rate: string | undefined): number {
    const interval = this.overrides.has(taskName) ? this.overrides.get(taskName) : rate ? rateIntervalMs(rate) : null;
    if (!interval) return 0;
    const now = this.now();
    const slot = Math.max(now, this.next.get(taskName) ?? now);
    this.next.set(taskName, slot + interval);
    return slot - now;
  }
}
