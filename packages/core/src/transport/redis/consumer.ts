/**
 * The Redis consumer's primitives on top of the shared leased poll ({@link LeasedPollConsumer}):
 * a fetch is one Lua step that takes a batch and records it in kombu's `unacked`; renewals and
 * settles are fenced by delivery count; acks of one event-loop turn go in one script call that
 * also fetches for the slots they free.
 */
import type { Redis } from 'ioredis';
import { readKombuEnvelope } from '../../protocol/kombu.js';
import type { Delivery } from '../transport.js';
import { LeasedPollConsumer } from '../leased-poll.js';
import { RedisDelivery, type RedisSettler } from './delivery.js';
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
 * Consumes a set of queues for one worker: fetches (one Lua step takes a batch and records it in
 * kombu's `unacked`), renews what it holds, and acks in batches that also fetch the next messages.
 */
export class RedisConsumer extends LeasedPollConsumer<string, RedisDelivery> implements RedisSettler {
  private readonly keys: string[];
  /** Queue name for each polled list (same order as `keys`). */
  private readonly queueOfKey: string[];
  /** Deliveries whose ack waits for this event-loop turn's batch. */
  private acks: RedisDelivery[] = [];
  /** Ack batches on their way: closing waits for them, so no ack meets a connection already closed. */
  private readonly flushing = new Set<Promise<void>>();

  constructor(
    private readonly host: ConsumerHost,
    queues: readonly string[],
    prefetch: number,
    onDelivery: (d: Delivery) => void,
    onGone: () => void,
  ) {
    super(
      {
        name: 'redis',
        visibilityTimeout: host.options.visibilityTimeout,
        prefetch,
        backoff: { minMs: 1, maxMs: 100 },
        // At most half the prefetch per fetch, so two fetches can be on their way at once (Redis takes
        // the next batch while this process runs the one it has, instead of the two taking turns).
        batch: (n) => Math.max(1, Math.ceil(n / 2)),
        watchdogMs: WATCHDOG_QUIET_MS,
      },
      onDelivery,
      onGone,
    );
    this.keys = queues.flatMap(queueKeys);
    this.queueOfKey = queues.flatMap((q) => queueKeys(q).map(() => q));
  }

  private readonly onReady = (): void => void this.renew();

  // Back from an outage: renew at once, before any process's restore can take what this one still runs.
  protected override onRenewStart(): void {
    this.host.redis.on('ready', this.onReady);
  }

  protected override onRenewStop(): void {
    this.host.redis.off('ready', this.onReady);
  }

  protected async fetch(n: number): Promise<number> {
    const sentAt = Date.now();
    const out = (await this.host.redis.celeriacFetchBuffer(
      3 + this.keys.length, KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, ...this.keys, n, nowSeconds(),
    )) as (Buffer | number)[];
    return this.deliverAll(out, 0, sentAt);
  }

  protected async renewLeases(held: readonly RedisDelivery[]): Promise<void> {
    await this.renewSome(held);
  }

  /** Renew these deliveries (fenced by their counts); one found handed on is let go. */
  private async renewSome(deliveries: readonly RedisDelivery[]): Promise<boolean[]> {
    const sentAt = Date.now();
    const args = deliveries.flatMap((d) => [d.tag, d.deliveryCount]);
    const flags = (await this.host.redis.celeriacRenew(KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, nowSeconds(), ...args)) as number[];
    return deliveries.map((d, i) => {
      if (flags[i] === 1) {
        d.leaseUntil = Math.max(d.leaseUntil, sentAt + this.visibilityTimeout);
        return true;
      }
      // Handed on: not ours to renew, nor to count against the prefetch; it will not be settled here.
      if (!d.settled && this.holds(d.tag, d)) {
        d.settled = true;
        d.lost = true;
        this.free(d);
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
      const delivery = new RedisDelivery(this, tag, this.keys[keyIndex]!, wire, this.queueOfKey[keyIndex]!, Number(out[i + 2]), sentAt + this.visibilityTimeout);
      this.hold(tag, delivery);
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
    this.unhold(delivery.tag, delivery);
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
    this.rehold(delivery.tag, delivery);
  }

  /** Frees the delivery's slot, if the slot is still its own (this consumer may hold a newer delivery of the same tag). */
  free(delivery: RedisDelivery): void {
    this.release(delivery.tag, delivery);
  }

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
    const want = this.active ? this.credit() : 0;
    try {
      if (want <= 0) {
        const flags = (await redis.celeriacAck(KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, ...tags)) as number[];
        for (let i = 0; i < batch.length; i++) batch[i]!.ackDone!(flags[i] === 1);
        return;
      }
      const wakes = this.wakeCount;
      const sentAt = Date.now();
      const out = await this.reserve(want, async () => {
        const reply = (await redis.celeriacAckFetchBuffer(
          3 + this.keys.length, KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, ...this.keys,
          batch.length, ...tags, want, nowSeconds(),
        )) as (Buffer | number)[];
        for (let i = 0; i < batch.length; i++) batch[i]!.ackDone!(reply[i] === 1);
        // A consumer cancelled meanwhile still owns what was fetched: handed out, it is acked or returned as usual.
        return this.deliverAll(reply, batch.length, sentAt);
      });
      if (out > 0) this.backoff.reset();
      // The loop may have been woken while this fetch held the free slots, and gone back to sleep.
      if (out < want && this.wakeCount !== wakes) this.backoff.wake();
    } catch (err) {
      for (const d of batch) d.ackFailed!(err);
    }
  }

  /** Acks queued or on their way first: they were given before the close. */
  protected override async drain(): Promise<void> {
    await this.flush();
    await Promise.all([...this.flushing]);
  }

  /** Closing: what this client holds goes back to its queue now rather than after the visibility window. */
  protected async giveBack(held: readonly RedisDelivery[]): Promise<void> {
    await Promise.all(held.map((d) => this.requeue(d).catch(() => false)));
  }
}
