/**
 * The consumer of a transport with leases that is read by polling (SQLite, Redis): one place for
 * the parts every such consumer needs and that drifted when each transport had its own —
 *
 * - credit: how many deliveries may be held (the prefetch) and how many a fetch on its way has
 *   already asked for, so a loop fetch and a transport's own fetch (Redis's ack batch) never
 *   over-fetch together;
 * - the fetch loop: waits for credit, backs off while idle or while the store fails, is woken by
 *   a hint, and (with a watchdog) is replaced when it goes quiet;
 * - lease renewal: every held delivery is renewed on a timer, a third of the visibility window;
 * - cancel: stop fetching, KEEP renewing what is still held until each delivery is acked or
 *   rejected, then stop (and let the transport forget the consumer);
 * - close: wait for fetches on their way, then give back what is held, at once.
 *
 * A transport supplies only its primitives: {@link LeasedPollConsumer.fetch} (take up to `n` and
 * hand each out through {@link LeasedPollConsumer.hold}), {@link LeasedPollConsumer.renewLeases}
 * and {@link LeasedPollConsumer.giveBack}; its deliveries settle through their own store and
 * call {@link LeasedPollConsumer.release} when their slot is free again.
 */
import { PollBackoff } from '../util/backoff.js';
import type { Consumer, Delivery } from './transport.js';

/** Longest wait of `cancel` for fetches on their way (each store command has a timeout of its own, shorter than this). */
const CANCEL_WAIT_MS = 5000;

export interface LeasedPollOptions {
  /** ms a lease lasts without renewal; renewals run every third of it (50 ms at the least). */
  readonly visibilityTimeout: number;
  readonly prefetch: number;
  /** The idle poll's back-off bounds (ms). */
  readonly backoff: { readonly minMs: number; readonly maxMs: number };
  /** Most slots one fetch asks for, given the prefetch (default: every free slot). */
  readonly batch?: (prefetch: number) => number;
  /** A fetch loop silent this long is replaced by a fresh one (for stores whose replies can be lost); off when absent. */
  readonly watchdogMs?: number;
  /** Named in the watchdog's warning. */
  readonly name: string;
}

export abstract class LeasedPollConsumer<K, D extends Delivery> implements Consumer {
  readonly backoff: PollBackoff;
  /** What this consumer holds (and renews), by the store's key for it. */
  protected readonly held = new Map<K, D>();
  /** Still fetching: false once cancelled or closing. */
  protected active = true;
  /** Released for good (the transport is closing): nothing is held or renewed again. */
  protected closed = false;
  protected readonly visibilityTimeout: number;
  private prefetch: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastLoopAt = Date.now();
  private generation = 0;
  /** Slots asked for by fetches on their way (the loop's or the transport's own), so they never over-fetch. */
  private fetching = 0;
  /** Fetches on their way (settle, never reject): cancel and close wait for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Wake-ups heard so far: a fetch compares it before and after to see one that came meanwhile. */
  private wakes = 0;

  constructor(
    private readonly options: LeasedPollOptions,
    private readonly onDelivery: (delivery: Delivery) => void,
    private readonly onGone: () => void,
  ) {
    this.prefetch = options.prefetch;
    this.visibilityTimeout = options.visibilityTimeout;
    this.backoff = new PollBackoff(options.backoff.minMs, options.backoff.maxMs);
  }

  /** Take up to `n` deliveries from the store, leased to this consumer, handing each out with {@link hold}; returns how many. */
  protected abstract fetch(n: number): Promise<number>;
  /** Renew the leases of these deliveries (one found handed on is let go with {@link release}). May reject: retried next tick. */
  protected abstract renewLeases(held: readonly D[]): Promise<void>;
  /** Closing: put these deliveries back in their queues now rather than after the visibility window. */
  protected abstract giveBack(held: readonly D[]): Promise<void>;
  /** Before close gives deliveries back: settles given before the close (a batch of acks) are finished. */
  protected async drain(): Promise<void> {}
  /** Renewals started (the consumer holds something, or started consuming). */
  protected onRenewStart(): void {}
  /** Renewals stopped for good (cancelled with nothing held, or closed). */
  protected onRenewStop(): void {}

  start(): void {
    this.startRenewing();
    const quiet = this.options.watchdogMs;
    if (quiet !== undefined) {
      // A fetch loop that has gone quiet (a reply that never came) is replaced by a fresh one.
      this.watchdog = setInterval(() => {
        if (this.active && Date.now() - this.lastLoopAt > quiet) {
          process.emitWarning(`${this.options.name} consumer quiet for ${Date.now() - this.lastLoopAt} ms: restarting its fetch loop`, 'CeleriacWarning');
          void this.loop();
        }
      }, quiet / 2);
      this.watchdog.unref();
    }
    void this.loop();
  }

  /** A hint that the store changed (a publish, a file change): an idle loop polls now. */
  wake(): void {
    this.wakes++;
    this.backoff.wake();
  }

  setPrefetch(count: number): void {
    this.prefetch = count;
    this.backoff.wake();
  }

  /**
   * Stop fetching; resolves once fetches on their way have handed out what they took (nothing is
   * delivered after it resolves, unless a fetch is still unanswered after {@link CANCEL_WAIT_MS}). Deliveries still held stay this consumer's: renewals go on until
   * each is settled (see {@link renew}).
   */
  async cancel(): Promise<void> {
    this.stopFetching();
    // Bounded: a reply that never comes (what the watchdog is for) must not hold up a shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise((r) => (timer = setTimeout(r, Math.min(this.visibilityTimeout, CANCEL_WAIT_MS))))]);
    clearTimeout(timer);
    if (this.held.size === 0) this.stopRenewing();
  }

  /** The transport is closing: settles given before now are finished, then what is held goes back to its queue. */
  async releaseAll(): Promise<void> {
    this.stopFetching();
    await this.drain();
    await this.settled();
    this.closed = true;
    const held = [...this.held.values()];
    this.held.clear();
    if (held.length) await this.giveBack(held).catch(() => undefined);
    this.stopRenewing();
  }

  /** Slots a fetch may ask for now: the prefetch less what is held and what fetches on their way asked for, at most one batch. */
  protected credit(): number {
    const batch = this.options.batch ? this.options.batch(this.prefetch) : this.prefetch;
    return Math.min(batch, this.prefetch - this.held.size - this.fetching);
  }

  /**
   * Run a fetch for `n` slots (counted against the credit while it runs, and waited for by cancel
   * and close). A transport's own fetch (Redis's ack batch) goes through here as the loop's does.
   */
  protected reserve<T>(n: number, run: () => Promise<T>): Promise<T> {
    this.fetching += n;
    const running = (async () => {
      try {
        return await run();
      } finally {
        this.fetching -= n;
      }
    })();
    const tracked = running.then(() => undefined, () => undefined);
    this.inFlight.add(tracked);
    void tracked.then(() => this.inFlight.delete(tracked));
    return running;
  }

  /** Wake-ups so far: a fetch that took fewer than it asked and saw this move fetches again. */
  protected get wakeCount(): number {
    return this.wakes;
  }

  /** Hold a fetched delivery (its slot is taken) and hand it to the consumer's callback. */
  protected hold(key: K, delivery: D): void {
    this.held.set(key, delivery);
    this.onDelivery(delivery);
  }

  /** A settle that did not reach the store: the delivery is held (and renewed) again until one does. False once closed. */
  protected rehold(key: K, delivery: D): boolean {
    if (this.closed) return false;
    this.held.set(key, delivery);
    this.startRenewing();
    return true;
  }

  /** Free the delivery's slot without waking the loop (the caller fetches for it itself). */
  protected unhold(key: K, delivery: D): void {
    if (this.held.get(key) === delivery) this.held.delete(key);
  }

  /** Settled, handed on, or dead-lettered: free its slot (if it is still its own) and let the loop fetch for it. */
  release(key: K, delivery: D): void {
    this.unhold(key, delivery);
    this.backoff.wake();
  }

  /** Is this the delivery held under `key` (a newer delivery of the same message may be)? */
  protected holds(key: K, delivery: D): boolean {
    return this.held.get(key) === delivery;
  }

  /**
   * Renew what this consumer holds. Goes on after {@link cancel} for as long as deliveries are held:
   * they are still this consumer's until settled. Never rejects.
   */
  async renew(): Promise<void> {
    if (this.held.size === 0) {
      if (!this.active) this.stopRenewing();
      return;
    }
    try {
      await this.renewLeases([...this.held.values()]);
    } catch {
      // Store away or busy: the next renewal tries again; leases age meanwhile.
    }
  }

  private startRenewing(): void {
    if (this.renewTimer || this.closed) return;
    const every = Math.max(50, Math.floor(this.visibilityTimeout / 3));
    // A live owner keeps its leases: a long task is never handed to a second consumer while it runs.
    // Unref'd: what keeps a worker alive is its tasks, not the renewal of their leases.
    this.renewTimer = setInterval(() => void this.renew(), every);
    this.renewTimer.unref();
    this.onRenewStart();
  }

  /** No more renewals: cancelled (or closed), and nothing held any more. */
  private stopRenewing(): void {
    if (!this.renewTimer) return;
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.onRenewStop();
    this.onGone();
  }

  private stopFetching(): void {
    this.active = false;
    this.backoff.wake();
    clearInterval(this.watchdog);
  }

  private async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  private async loop(): Promise<void> {
    // Only the newest loop runs: one replaced by the watchdog stops when (if ever) it wakes up.
    const generation = ++this.generation;
    while (this.active && generation === this.generation) {
      this.lastLoopAt = Date.now();
      const free = this.credit();
      const wakes = this.wakes;
      let got = 0;
      if (free > 0) {
        try {
          got = await this.reserve(free, () => this.fetch(free));
        } catch {
          // Store unreachable, restarting or busy: back off; the loop resumes on its own.
        }
      }
      if (got > 0 || (free > 0 && got < free && this.wakes !== wakes)) {
        this.backoff.reset();
        continue;
      }
      await this.backoff.sleep();
    }
  }
}
