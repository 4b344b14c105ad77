import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '@celeriac/core/spi';

/** The memory backend's fleet-limit steps (the same contract the Redis and SQLite ones keep in their integration tests). */
describe('fleet limits on the memory backend', () => {
  it('books rate slots one interval apart; an override changes the interval, null lifts the limit', async () => {
    const b = new MemoryBackend(`fleet-${Date.now()}`);
    const waits = [];
    for (let i = 0; i < 5; i++) waits.push(await b.reserveRateSlot('t', 't', 100));
    // Booked back to back: 0, ~100, ~200, ... (minus the few ms the loop itself took).
    waits.forEach((w, i) => expect(w).toBeGreaterThan(i * 100 - 20));
    waits.forEach((w, i) => expect(w).toBeLessThanOrEqual(i * 100));
    await b.setRateOverride('t', null);
    expect(await b.reserveRateSlot('t', 't', 100)).toBe(0);
    await b.setRateOverride('t', 1000);
    await b.setRateOverride('t', undefined);
    expect(await b.reserveRateSlot('t', 'other-bucket', 100)).toBe(0);
  });

  it('gives at most N leases of a key; a holder renews its own; a released or expired lease frees a place', async () => {
    const b = new MemoryBackend(`lease-${Date.now()}`);
    expect(await b.acquireLease('k', 'a', 2, 60_000)).toBe(true);
    expect(await b.acquireLease('k', 'b', 2, 60_000)).toBe(true);
    expect(await b.acquireLease('k', 'c', 2, 60_000)).toBe(false);
    expect(await b.acquireLease('k', 'a', 2, 60_000)).toBe(true);
    expect(await b.acquireLease('other', 'c', 2, 60_000)).toBe(true);
    await b.releaseLease('k', 'a');
    expect(await b.acquireLease('k', 'c', 2, 60_000)).toBe(true);
    expect(await b.acquireLease('short', 'x', 1, 1)).toBe(true);
    const until = Date.now() + 5;
    while (Date.now() < until); // the 1 ms lease passes (a busy wait on the clock, not a sleep)
    expect(await b.acquireLease('short', 'y', 1, 60_000)).toBe(true);
  });
});
