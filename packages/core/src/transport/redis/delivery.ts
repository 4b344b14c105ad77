/**
 * One message as the Redis consumer hands it out: kombu's delivery tag, the list it came from, its
 * delivery count (the fence of every renewal and settle) and its lease as last renewed. Settling
 * goes through the consumer ({@link RedisSettler}), which batches acks and fences them.
 */
import { LeaseLostError } from '../../errors.js';
import type { WireMessage } from '../../protocol/message.js';
import type { Delivery } from '../transport.js';

/** What a delivery asks of the consumer that holds it. */
export interface RedisSettler {
  leaseHeld(delivery: RedisDelivery): Promise<boolean>;
  /** Resolves true when acknowledged, false when the lease was lost (the message was handed on). */
  ack(delivery: RedisDelivery): Promise<boolean>;
  reject(delivery: RedisDelivery, requeue: boolean, delayMs: number | undefined): Promise<boolean>;
  /** A settle that did not reach Redis: hold (and renew) the delivery again. */
  unsettled(delivery: RedisDelivery): void;
  /** Free the delivery's slot. */
  free(delivery: RedisDelivery): void;
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
  /** Set while its ack waits in the consumer's batch. */
  ackDone: ((ok: boolean) => void) | undefined;
  ackFailed: ((err: unknown) => void) | undefined;

  constructor(
    private readonly consumer: RedisSettler,
    readonly tag: string,
    /** The list it was taken from: where a requeue puts it back. */
    readonly key: string,
    readonly message: WireMessage,
    readonly queue: string,
    readonly deliveryCount: number,
    /** Epoch ms until which no other consumer can be handed it: the last fetch or renewal sent, plus the window. */
    public leaseUntil: number,
  ) {
    this.redelivered = deliveryCount > 1 || message.headers.redelivered === true;
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
    this.consumer.free(this);
  }
}
