/**
 * Queue depths sampled every few seconds: ready (the broker's count), delayed
 * and dead-letter counts broker-wide, unacked from the workers' replies, and
 * the rate of change of `ready` between two samples.
 */
import type { Transport } from '@celeriac/core/spi';
import type { QueuesView } from './model.js';

export class QueueSampler {
  private previous = new Map<string, { ready: number; at: number }>();
  last: QueuesView | null = null;

  /**
   * Sample the given queues now. Rejects when the broker does not answer (the
   * monitor turns that into "unreachable"); the last good sample stays readable.
   */
  async sample(transport: Transport, names: readonly string[], unacked: (queue: string) => number | null, measurable: (queue: string) => boolean = () => true): Promise<QueuesView> {
    const at = Date.now();
    const [lengths, delayed, deadLetters] = await Promise.all([
      Promise.all(names.map((name) => (measurable(name) ? transport.length(name) : Promise.resolve(null)))),
      transport.delayedCount(),
      transport.deadLetterCount(),
    ]);
    const next = new Map<string, { ready: number; at: number }>();
    const queues = names.map((name, i) => {
      const ready = lengths[i] ?? null;
      const before = this.previous.get(name);
      if (ready === null) return { name, ready, unacked: unacked(name), readyRate: null };
      next.set(name, { ready, at });
      const seconds = before ? (at - before.at) / 1000 : 0;
      return { name, ready, unacked: unacked(name), readyRate: before && seconds > 0 ? Math.round(((ready - before.ready) / seconds) * 100) / 100 : null };
    });
    this.previous = next;
    this.last = { queues, delayed, deadLetters, sampledAt: at };
    return this.last;
  }
}
