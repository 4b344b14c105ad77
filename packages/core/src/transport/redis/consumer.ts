import type { Redis } from 'ioredis';
import { LeaseLostError } from '../../errors.js';
import { readKombuEnvelope } from '../../protocol/kombu.js';
import type { WireMessage } from '../../protocol/message.js';
import { PollBackoff } from '../../util/backoff.js';
import type { Consumer, Delivery } from '../transport.js';
import { KEYS, nowSeconds, queueKeys, readUnackedEntry } from './keys.js';
import { SEP } from './scripts.js';

/** A fetch loop silent this long is considered stuck (every command has a timeout, so this is a last resort). */
const WATCHDOG_QUIET_MS = 30_000;
/**
 * A lease this close to its end is checked with Redis rather than trusted: room for another host's
 * clock being ahead of ours (restores compare index scores with the restorer's clock).
 */
const LEASE_MARGIN_MS = 1000;

/** What a consumer needs of its transport. */
export interface ConsumerHost {
  readonly redis: Redis;
  readonly options: { readonly visibilityTimeout: number };
}

/**
 * A delivery as the Redis consumer hands it out; `tag` is kombu's delivery_tag. A class, not an
 * object of closures: one is made per message, and its methods live once on the prototype.
 */
export class RedisDelivery implements Delivery {
  settled = false;
  /** Found handed on to another consumer (a renewal or a lease check said so): never settled here. */
  lost = false;
  readonly redelivered: boolean;
  /** Epoch ms until which no other consumer can be handed it: the last fetch or renewal sent, plus the window. */
  leaseUntil: number;
  /** Set while its ack waits in the consumer's batch. */
  ackDone: ((ok: boolean) => void) | undefined;
  ackFailed: ((err: unknown) => void) | undefined;

  constructor(
    private readonly consumer: RedisConsumer,
    readonly tag: string,
    /** The list it was taken from: where a requeue puts it back. */
    readonly key: string,
    readonly message: WireMessage,
    readonly queue: string,
    readonly deliveryCount: number,
    sentAt: number,
  ) {
    this.redelivered = deliveryCount > 1 || message.headers.redelivered === true;
    this.leaseUntil = sentAt + consumer.visibilityTimeout;
  }

  leaseHeld(): Promise<boolean> {
    return this.consumer.leaseHeld(this);
  }

  async ack(): Promise<void> {
    if (this.lost) throw new LeaseLostError('ack');
    if (this.settled) return;
    if (!(await this.settle(() => this.consumer.ack(this)))) throw new LeaseLostError('ack');
  }

  async reject({ requeue, delayMs }: { requeue: boolean; delayMs?: number }): Promise<void> {
    if (this.lost) throw new LeaseLostError('reject');
    if (this.settled) return;
    const ok = await this.settle(() => this.consumer.reject(this, requeue, delayMs));
    this.release();
    if (!ok) throw new LeaseLostError('reject');
  }

  /** Mark it settled and run `step` (true: done; false: the lease was lost, the message handed on). */
  private async settle(step: () => Promise<boolean>): Promise<boolean> {
    this.settled = true;
    try {
      return await step();
    } catch (err) {
      // Redis away: still ours, so a retry of this settle is sent again (and renewals go on meanwhile).
      this.consumer.unsettled(this);
      throw err;
    }
  }

  /** Settled some other way (dead-lettered): free its slot. */
  release(): void {
    this.consumer.release(this);
  }
}

/**
 * Consumes a set of queues for one worker: fetches (one Lua step takes a batch and records it in
 * kombu's `unacked`), renews what it holds, and acks in batches that also fetch the next messages.
 */
export class RedisConsumer implements Consumer {
  readonly backoff = new PollBackoff(1, 100);
  private readonly held = new Map<string, RedisDelivery>();
  private active = true;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Released for good (the transport is closing): nothing is held or renewed again. */
  private closed = false;
  /** The loop's fetch on its way, if any (settles, never rejects). */
  private loopFetch: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastLoopAt = Date.now();
  private generation = 0;
  /** Slots asked for by a fetch on its way (the loop's or an ack batch's), so the two never over-fetch. */
  private fetching = 0;
  private readonly keys: string[];
  readonly visibilityTimeout: number;
  /** Queue name for each polled list (same order as `keys`). */
  private readonly queueOfKey: string[];
  /** Deliveries whose ack waits for this event-loop turn's batch. */
  private acks: RedisDelivery[] = [];
  /** Wake-ups heard so far: a fetch compares it before and after to see one that came meanwhile. */
  private wakes = 0;

  constructor(
    private readonly host: ConsumerHost,
    queues: readonly string[],
    private prefetch: number,
    private readonly onDelivery: (d: Delivery) => void,
    private readonly onGone: () => void,
  ) {
    this.keys = queues.flatMap(queueKeys);
    this.queueOfKey = queues.flatMap((q) => queueKeys(q).map(() => q));
    this.visibilityTimeout = host.options.visibilityTimeout;
  }

  start(): void {
    this.startRenewing();
    // Watchdog: a fetch loop that has gone quiet (a reply that never came) is replaced by a fresh one.
    this.watchdog = setInterval(() => {
      if (this.active && Date.now() - this.lastLoopAt > WATCHDOG_QUIET_MS) {
        process.emitWarning(`redis consumer quiet for ${Date.now() - this.lastLoopAt} ms: restarting its fetch loop`, 'CeleriacWarning');
        void this.loop();
      }
    }, WATCHDOG_QUIET_MS / 2);
    this.watchdog.unref();
    void this.loop();
  }

  /**
   * A publisher announced a message. A fetch on its way may have been answered before that
   * message arrived; it sees the wake-up count move and fetches again (otherwise the loop would
   * sleep on, and a round trip pay its back-off).
   */
  wake(): void {
    this.wakes++;
    this.backoff.wake();
  }

  private readonly onReady = (): void => void this.renew();

  private startRenewing(): void {
    if (this.renewTimer || this.closed) return;
    const every = Math.max(50, Math.floor(this.visibilityTimeout / 3));
    // A live owner keeps its deliveries fresh in unacked_index: never restored while it runs them.
    // Unref'd: what keeps a worker alive is its tasks, not the renewal of their leases.
    this.renewTimer = setInterval(() => void this.renew(), every);
    this.renewTimer.unref();
    // Back from an outage: renew at once, before any process's restore can take what this one still runs.
    this.host.redis.on('ready', this.onReady);
  }

  /**
   * Keep what this consumer holds fresh in unacked_index. Goes on after {@link cancel} for as long
   * as deliveries are held: they are still this consumer's until settled. Never rejects.
   */
  async renew(): Promise<void> {
    if (this.held.size === 0) {
      if (!this.active) this.stop();
      return;
    }
    const held = [...this.held.values()];
    try {
      await this.renewSome(held);
    } catch {
      // Redis away: the next renewal (or the reconnect's) tries again; leases age meanwhile.
    }
  }

  /** Renew these deliveries (fenced by their counts); one found handed on is let go. */
  private async renewSome(deliveries: RedisDelivery[]): Promise<boolean[]> {
    const sentAt = Date.now();
    const args = deliveries.flatMap((d) => [d.tag, d.deliveryCount]);
    const flags = (await this.host.redis.celeriacRenew(KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, nowSeconds(), ...args)) as number[];
    return deliveries.map((d, i) => {
      if (flags[i] === 1) {
        d.leaseUntil = Math.max(d.leaseUntil, sentAt + this.visibilityTimeout);
        return true;
      }
      // Handed on: not ours to renew, nor to count against the prefetch; it will not be settled here.
      if (!d.settled && this.held.get(d.tag) === d) {
        d.settled = true;
        d.lost = true;
        this.release(d);
      }
      return false;
    });
  }

  /** Fresh enough to trust, else asked of Redis (and renewed): still in unacked with this delivery's count. */
  async leaseHeld(delivery: RedisDelivery): Promise<boolean> {
    if (delivery.lost) return false;
    // Acknowledged already (early acks): there is no lease left to fence.
    if (delivery.settled) return true;
    if (Date.now() < delivery.leaseUntil - LEASE_MARGIN_MS) return true;
    const [held] = await this.renewSome([delivery]);
    return held!;
  }

  /** No more renewals: cancelled, and nothing held any more. */
  private stop(): void {
    if (!this.renewTimer) return;
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    this.host.redis.off('ready', this.onReady);
    this.onGone();
  }

  private async loop(): Promise<void> {
    const redis = this.host.redis;
    // Only the newest loop runs: one replaced by the watchdog stops when (if ever) it wakes up.
    const generation = ++this.generation;
    while (this.active && generation === this.generation) {
      this.lastLoopAt = Date.now();
      const free = this.free();
      const wakes = this.wakes;
      let got = 0;
      if (free > 0) {
        this.fetching += free;
        const sentAt = Date.now();
        const fetch = redis.celeriacFetchBuffer(3 + this.keys.length, KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, ...this.keys, free, nowSeconds()) as Promise<
          (Buffer | number)[]
        >;
        // Closing waits for this fetch: what it takes is handed out (or given back) before the close.
        this.loopFetch = fetch.then(() => undefined, () => undefined);
        try {
          got = this.deliverAll(await fetch, 0, sentAt);
        } catch {
          // Redis unreachable or restarting: back off; ioredis reconnects, and this loop resumes on its own.
        } finally {
          this.fetching -= free;
          this.loopFetch = undefined;
        }
      }
      if (got > 0 || (free > 0 && got < free && this.wakes !== wakes)) {
        this.backoff.reset();
        continue;
      }
      await this.backoff.sleep();
    }
  }

  /**
   * Slots to fetch for now: at most half the prefetch per fetch, so two fetches can be on their way
   * at once (Redis takes the next batch while this process runs the one it has, instead of the two
   * taking turns).
   */
  private free(): number {
    return Math.min(Math.max(1, Math.ceil(this.prefetch / 2)), this.prefetch - this.held.size - this.fetching);
  }

  /**
   * Hand out the messages of a fetch reply (flat: key index, tag, count, envelope), from `from`;
   * returns how many. The reply comes as Buffers, not strings (the `…Buffer` form of the script
   * commands): an envelope is decoded once here, and its bytes stay off the JS heap while held.
   */
  private deliverAll(out: (Buffer | number)[], from: number, sentAt: number): number {
    let got = 0;
    for (let i = from; i < out.length; i += 4) {
      const keyIndex = Number(out[i]) - 1;
      const tag = String(out[i + 1]);
      const wire = readKombuEnvelope((out[i + 3] as Buffer).toString()).wire;
      const delivery = new RedisDelivery(this, tag, this.keys[keyIndex]!, wire, this.queueOfKey[keyIndex]!, Number(out[i + 2]), sentAt);
      this.held.set(tag, delivery);
      this.onDelivery(delivery);
      got++;
    }
    return got;
  }

  /** Queue an ack for this turn's batch; resolves true when acknowledged, false when the lease was lost. */
  ack(delivery: RedisDelivery): Promise<boolean> {
    const pending = new Promise<boolean>((done, fail) => {
      delivery.ackDone = done;
      delivery.ackFailed = fail;
    });
    if (this.acks.length === 0) setImmediate(() => void this.flush());
    this.acks.push(delivery);
    // Free the slot as soon as the ack is queued, without waking the loop: the ack batch itself
    // fetches for the slots it frees, in the same script call.
    if (this.held.get(delivery.tag) === delivery) this.held.delete(delivery.tag);
    return pending;
  }

  async reject(delivery: RedisDelivery, requeue: boolean, delayMs: number | undefined): Promise<boolean> {
    if (!requeue) return this.ack(delivery);
    return this.requeue(delivery, delayMs);
  }

  /**
   * Put a delivery back, now or after `delayMs`. Its envelope is read back from its `unacked`
   * entry rather than held in memory for every message in flight (a requeue is the rare path);
   * the REQUEUE step is fenced by that entry, so a lost lease still answers false.
   */
  private async requeue({ tag, key, deliveryCount }: RedisDelivery, delayMs?: number): Promise<boolean> {
    const redis = this.host.redis;
    const entry = await redis.hget(KEYS.unacked, tag);
    if (entry === null) return false;
    const [payload] = readUnackedEntry(entry);
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    if (delayMs) {
      return (await redis.celeriacRequeue(KEYS.unacked, KEYS.unackedIndex, KEYS.delayed, KEYS.deliveries, tag, `${key}${SEP}${text}`, Date.now() + delayMs, deliveryCount)) === 1;
    }
    return (await redis.celeriacRequeue(KEYS.unacked, KEYS.unackedIndex, key, KEYS.deliveries, tag, text, '', deliveryCount)) === 1;
  }

  /** A settle that did not reach Redis: the delivery is held (and renewed) again until one does. */
  unsettled(delivery: RedisDelivery): void {
    delivery.settled = false;
    // Closed meanwhile: it comes back after the visibility window (nothing renews it any more).
    if (this.closed) return;
    this.held.set(delivery.tag, delivery);
    this.startRenewing();
  }

  /** Frees the delivery's slot, if the slot is still its own (this consumer may hold a newer delivery of the same tag). */
  release(delivery: RedisDelivery): void {
    if (this.held.get(delivery.tag) === delivery) this.held.delete(delivery.tag);
    this.backoff.wake();
  }

  /** Ack batches on their way: closing waits for them, so no ack meets a connection already closed. */
  private readonly flushing = new Set<Promise<void>>();

  private flush(): Promise<void> {
    if (this.acks.length === 0) return Promise.resolve();
    const batch = this.flushAcks();
    this.flushing.add(batch);
    // flushAcks never rejects: each ack's own promise carries its failure.
    void batch.then(() => this.flushing.delete(batch));
    return batch;
  }

  private async flushAcks(): Promise<void> {
    const batch = this.acks;
    this.acks = [];
    const redis = this.host.redis;
    const tags = batch.flatMap((d) => [d.tag, d.deliveryCount]);
    const want = this.active ? this.free() : 0;
    try {
      if (want <= 0) {
        const flags = (await redis.celeriacAck(KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, ...tags)) as number[];
        for (let i = 0; i < batch.length; i++) batch[i]!.ackDone!(flags[i] === 1);
        return;
      }
      this.fetching += want;
      const wakes = this.wakes;
      const sentAt = Date.now();
      let out: (Buffer | number)[];
      try {
        out = (await redis.celeriacAckFetchBuffer(
          3 + this.keys.length, KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, ...this.keys,
          batch.length, ...tags, want, nowSeconds(),
        )) as (Buffer | number)[];
      } finally {
        this.fetching -= want;
      }
      for (let i = 0; i < batch.length; i++) batch[i]!.ackDone!(out[i] === 1);
      // A consumer cancelled meanwhile still owns what was fetched: handed out, it is acked or returned as usual.
      const got = this.deliverAll(out, batch.length, sentAt);
      if (got > 0) this.backoff.reset();
      // The loop may have been woken while this fetch held the free slots, and gone back to sleep.
      if (got < want && this.wakes !== wakes) this.backoff.wake();
    } catch (err) {
      for (const d of batch) d.ackFailed!(err);
    }
  }

  setPrefetch(count: number): void {
    this.prefetch = count;
    this.backoff.wake();
  }

  /** Stop fetching. Renewals go on while deliveries are held (see {@link renew}). */
  async cancel(): Promise<void> {
    this.active = false;
    this.backoff.wake();
    clearInterval(this.watchdog);
    if (this.held.size === 0) this.stop();
  }

  /** Closing: what this client holds goes back to its queue now rather than after the visibility window. */
  async releaseAll(): Promise<void> {
    this.active = false;
    this.backoff.wake();
    clearInterval(this.watchdog);
    // Acks queued or on their way first: they were given before the close; and the loop's fetch.
    await this.flush();
    await Promise.all([...this.flushing, this.loopFetch]);
    this.closed = true;
    await Promise.all([...this.held.values()].map((d) => this.requeue(d).catch(() => false)));
    this.held.clear();
    this.stop();
  }
}
