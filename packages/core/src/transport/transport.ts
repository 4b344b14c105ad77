import type { WireMessage } from '../protocol/message.js';
import type { ListenOptions, Notice, NoticeExchange, NotifyOptions } from './notice.js';

/**
 * What a transport can do, declared as data. `createApp` and the worker check
 * these at configuration time and refuse a setup that needs a missing one,
 * with a {@link CapabilityError} — never a silent downgrade at run time.
 */
export interface TransportCapabilities {
  /** How message priority is honoured: `highFirst` (AMQP-style), `lowFirst` (kombu Redis), or not at all. */
  readonly priorities: 'highFirst' | 'lowFirst' | false;
  /** Can hold a message broker-side until a due time (countdown, eta, retry backoff). */
  readonly delayedDelivery: boolean;
  /** Broadcast to every subscriber (remote control, events). */
  readonly fanout: boolean;
  /** `publish` resolves only once the broker has durably accepted the message. */
  readonly confirms: boolean;
  /** Unacknowledged messages return on their own after a visibility window (a crashed consumer). */
  readonly visibilityTimeout: boolean;
  /** Messages survive a restart of every process. */
  readonly durable: boolean;
  /** Several processes can share one broker through it. */
  readonly crossProcess: boolean;
}

export interface PublishOptions {
  /** Message priority (0–255; the meaning follows `capabilities.priorities`). */
  readonly priority?: number;
  /** Epoch ms before which the message must not be delivered (broker-side delay). */
  readonly notBefore?: number;
  /** AMQP: publish to this exchange (a route's `exchange`) rather than straight to `queue`. Others ignore it. */
  readonly exchange?: string;
  /** AMQP: routing key to use with `exchange`. */
  readonly routingKey?: string;
}

/** One delivered message, owned by the consumer until it acks or rejects it. */
export interface Delivery {
  readonly message: WireMessage;
  readonly queue: string;
  /** True when this message was delivered before and not acknowledged. */
  readonly redelivered: boolean;
  /** 1 on first delivery; counts every delivery of this message. */
  readonly deliveryCount: number;
  ack(): Promise<void>;
  /**
   * `requeue: true` returns it to its queue (counts as another delivery), after
   * `delayMs` when given (broker-side, like a delayed publish); false drops it.
   */
  reject(options: { requeue: boolean; delayMs?: number }): Promise<void>;
  /**
   * Transports with leases (a visibility window): true while no other consumer can have been
   * handed this message — the lease was renewed recently enough, or the broker says it is still
   * this delivery's. A worker checks it before writing a result, so an owner paused past its
   * lease writes nothing over the run that replaced it (fencing). Cheap when the lease is fresh.
   */
  leaseHeld?(): Promise<boolean>;
}

/** What the worker gets back from `consume`: a handle to tune and stop it. */
export interface Consumer {
  /** Maximum unacknowledged deliveries in flight for this consumer. */
  setPrefetch(count: number): void;
  /**
   * Stop receiving. Deliveries not yet acked stay owned until acked or rejected: a transport with
   * leases keeps renewing them (a long task outlives a suspend, a cancel_consumer or a warm shutdown).
   */
  cancel(): Promise<void>;
}

/** Why and when a message was moved out of the way instead of being run. */
export interface DeadLetterRecord {
  /** Task id when readable, otherwise a generated id. */
  readonly id: string;
  readonly taskName: string | null;
  readonly queue: string;
  /** Stable error code (`MESSAGE_MALFORMED`, `TASK_UNKNOWN`, `WORKER_LOST`, ...). */
  readonly reason: string;
  readonly message: string;
  readonly traceback: string | null;
  readonly deliveryCount: number;
  readonly failedAt: number;
  readonly wire: WireMessage;
}

/**
 * The narrow seam between celeriac and a broker, like kombu's virtual channel.
 * Retries, routing, canvas, expiry, revocation and ETA live above it, once.
 */
export interface Transport {
  /** Short name for logs (`memory`, `redis`, ...); never contains credentials. */
  readonly kind: string;
  readonly capabilities: TransportCapabilities;
  publish(queue: string, message: WireMessage, options?: PublishOptions): Promise<void>;
  /** Deliver messages from `queues` (in the order given when several are ready) up to `prefetch` unacked. */
  consume(queues: readonly string[], onDelivery: (delivery: Delivery) => void, options: { prefetch: number }): Promise<Consumer>;
  /** Drop every ready message of a queue; returns how many were dropped. */
  purge(queue: string): Promise<number>;
  /** Ready messages in a queue (delayed ones not counted). */
  length(queue: string): Promise<number>;
  /** Move a delivery to the dead-letter store (acknowledging it) in one step. */
  deadLetter(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): Promise<void>;
  /** Dead letters oldest first, one page at a time (the store is never loaded whole). */
  listDeadLetters(page?: DeadLetterPage): Promise<DeadLetterRecord[]>;
  /** How many dead letters are stored. */
  deadLetterCount(): Promise<number>;
  /** Remove a dead letter by id, returning it (to requeue or discard). */
  /**
   * With `failedAt`, only the record that failed at that time is taken: the message requeued from it
   * and refused again at once has a newer record under the same id, which stays.
   */
  takeDeadLetter(id: string, options?: { failedAt?: number }): Promise<DeadLetterRecord | undefined>;
  /** Publish a transient notice (remote control, events) on `exchange`; dropped when no queue is bound. */
  notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options?: NotifyOptions): Promise<void>;
  /**
   * Bind a transient queue to `exchange` with `bindingKey` and hand every notice
   * routed to it to `onNotice` until the returned function is called (which
   * unbinds and deletes the queue). A listener survives reconnects.
   */
  listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  /**
   * Why this broker, as it is set up, may lose work it accepted (Redis: eviction on, no
   * persistence). Workers refuse to start on such a broker unless the app allows it. Omitted or
   * empty: nothing known to be unsafe.
   */
  unsafeSettings?(): Promise<readonly string[]>;
  /** Messages waiting broker-side for their due time (countdown, eta, retries), when the broker can count them. */
  delayedCount(): Promise<number | null>;
  close(): Promise<void>;
}

/** A page of the dead-letter store: `limit` records (default 100, `DEAD_LETTER_PAGE`; at most 1000) from `offset`. */
export interface DeadLetterPage {
  readonly offset?: number;
  readonly limit?: number;
}

export const DEAD_LETTER_PAGE = 100;

/** A page's bounds, checked: offset ≥ 0, 1 ≤ limit ≤ 1000. */
export function pageBounds(page: DeadLetterPage = {}): { offset: number; limit: number } {
  const offset = Math.max(0, Math.floor(page.offset ?? 0));
  const limit = Math.min(1000, Math.max(1, Math.floor(page.limit ?? DEAD_LETTER_PAGE)));
  return { offset, limit };
}

/** The full record of a delivery being dead-lettered: the caller's reason plus where it came from and how often. */
export function deadLetterRecord(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): DeadLetterRecord {
  return { ...record, queue: delivery.queue, deliveryCount: delivery.deliveryCount, wire: delivery.message };
}
