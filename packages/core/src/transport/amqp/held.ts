/**
 * Ack-then-track, celeriac's answer to RabbitMQ's `consumer_timeout` (catalogue T08): a delivery
 * held unacked longer than the broker allows makes the broker close the whole channel (406), which
 * drops every other delivery on it and re-runs them all. So a delivery held for half of
 * `consumerTimeout` is moved off the channel: a copy goes to a private durable "held" queue whose
 * message TTL dead-letters it back to the task queue, and only once the broker confirms the copy is
 * the original acked. Every half TTL the copy moves to a fresh held queue (the old one deleted), like
 * a lease renewal. Finishing deletes the held queue; if the worker dies instead, the copy returns to
 * the task queue within one TTL and runs again — at least once, as before.
 */
import type { ConsumeMessage, Options } from 'amqplib';
import { newId } from '../../util/ids.js';
import type { AmqpSession } from '../../drivers/amqp/session.js';
import { DELIVERIES_HEADER } from './wire.js';

/** Prefix of the held queues (one per tracked delivery and renewal). */
export const HELD_PREFIX = 'celeriac.held.';

/** One tracked delivery: where its copy is now, and the renewal that moves it. */
export class HeldDelivery {
  private queue: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  /** Serialises the moves and the final delete (a renewal never races the ack). */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly session: AmqpSession,
    /** The task queue the copy dead-letters back to. */
    private readonly home: string,
    private readonly msg: ConsumeMessage,
    /** The delivery count the copy carries (so a copy that comes back counts as a delivery). */
    private readonly count: number,
    /** Message TTL of each copy (the broker's consumer_timeout). */
    private readonly ttlMs: number,
    private readonly log: (message: string) => void,
  ) {}

  /** Put the first copy in place (confirmed). After this resolves the original may be acked. */
  async start(): Promise<void> {
    await this.move();
    this.schedule();
  }

  private schedule(): void {
    if (this.done) return;
    this.timer = setTimeout(() => {
      this.chain = this.chain
        .then(() => (this.done ? undefined : this.move()))
        .catch((err: unknown) => this.log(`could not renew the held copy of a long task (it returns to ${this.home} when its TTL ends): ${(err as Error).message}`))
        .finally(() => this.schedule());
    }, this.ttlMs / 2);
    this.timer.unref();
  }

  /** A fresh held queue with a fresh copy; then the old queue (and its copy) deleted. */
  private async move(): Promise<void> {
    const name = `${HELD_PREFIX}${this.home}.${newId()}`;
    const ch = await this.session.adminChannel();
    await ch.assertQueue(name, {
      durable: true,
      arguments: {
        'x-message-ttl': this.ttlMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': this.home,
        // Unused queues go, but only well after their copy has dead-lettered (expiry would drop it).
        'x-expires': 2 * this.ttlMs + 60_000,
      },
    });
    const props = this.msg.properties as Options.Publish & { headers?: Record<string, unknown> };
    await this.session.publish('', name, this.msg.content, { ...props, headers: { ...props.headers, [DELIVERIES_HEADER]: this.count }, deliveryMode: 2, mandatory: true });
    const old = this.queue;
    this.queue = name;
    if (old) await this.drop(old);
  }

  private async drop(queue: string): Promise<void> {
    const ch = await this.session.adminChannel();
    await ch.deleteQueue(queue);
  }

  /**
   * The task is over (acked, rejected or dead-lettered): delete the copy so it never comes back.
   * Rejects when the broker cannot be reached (the caller retries, as for an ack).
   */
  async finish(): Promise<void> {
    this.done = true;
    clearTimeout(this.timer);
    const run = this.chain.then(async () => {
      if (this.queue) await this.drop(this.queue);
      this.queue = undefined;
    });
    this.chain = run.catch(() => undefined);
    await run;
  }
}
