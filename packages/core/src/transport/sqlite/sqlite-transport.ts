/**
 * `sqlite://path`: the embedded broker — publishing, claiming (for {@link SqliteConsumer}), the
 * dead-letter store and notices, all in one database file shared by the processes of one machine.
 */
import { TransportClosedError } from '../../errors.js';
import { toKombuEnvelope } from '../../protocol/kombu.js';
import type { WireMessage } from '../../protocol/message.js';
import { PollBackoff } from '../../util/backoff.js';
import { deadLetterRecord, pageBounds, type Consumer, type DeadLetterPage, type DeadLetterRecord, type Delivery, type PublishOptions, type Transport, type TransportCapabilities } from '../transport.js';
import { bindingMatches, type Notice, type NoticeExchange, type NotifyOptions } from '../notice.js';
import { ChangeHints, openDb, type Db } from '../../drivers/sqlite/db.js';
import { SqliteConsumer, type ClaimedRow } from './consumer.js';

export interface SqliteTransportOptions {
  /** How long a claimed message stays invisible without renewal; the live owner renews it every third of this. */
  readonly visibilityTimeout: number;
}

/** Broadcast rows older than this are pruned: remote control and events are live signals, not history. */
const BROADCAST_KEEP_MS = 60_000;

/**
 * `sqlite://path`: the embedded default broker. Several processes share one
 * file: claims run in `BEGIN IMMEDIATE` transactions, each claimed message
 * carries its owner's token and a lease that the live owner renews, and a
 * message whose lease ran out (its owner died) is claimable again.
 */
export class SqliteTransport implements Transport {
  readonly kind = 'sqlite';
  readonly capabilities: TransportCapabilities = Object.freeze({
    priorities: 'highFirst',
    delayedDelivery: true,
    fanout: true,
    confirms: true,
    visibilityTimeout: true,
    durable: true,
    crossProcess: true,
  });
  private readonly consumers = new Set<SqliteConsumer>();
  private readonly subscriptions = new Map<string, Set<(notice: Notice) => void>>();
  private broadcastLoop: Promise<void> | undefined;
  private readonly broadcastBackoff = new PollBackoff(5, 250);
  private closed = false;
  private readonly onChange = (): void => {
    for (const c of this.consumers) c.wake();
    this.broadcastBackoff.wake();
  };

  private constructor(
    readonly db: Db,
    private readonly path: string,
    private readonly hints: ChangeHints,
    readonly options: SqliteTransportOptions,
  ) {
    hints.on('change', this.onChange);
  }

  static async open(path: string, options: SqliteTransportOptions): Promise<SqliteTransport> {
    return new SqliteTransport(await openDb(path), path, ChangeHints.acquire(path), options);
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportClosedError('sqlite transport');
  }

  async publish(queue: string, message: WireMessage, options: PublishOptions = {}): Promise<void> {
    this.assertOpen();
    const envelope = JSON.stringify(toKombuEnvelope(message, { exchange: '', routingKey: queue }));
    this.db
      .prepare('INSERT INTO messages (queue, priority, due_at, envelope) VALUES (?, ?, ?, ?)')
      .run(queue, options.priority ?? 0, options.notBefore ?? 0, envelope);
    this.hints.notify();
  }

  async consume(queues: readonly string[], onDelivery: (d: Delivery) => void, options: { prefetch: number }): Promise<Consumer> {
    this.assertOpen();
    const consumer = new SqliteConsumer(this, [...queues], options.prefetch, onDelivery, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  async purge(queue: string): Promise<number> {
    return this.db.prepare('DELETE FROM messages WHERE queue = ? AND (lease_until IS NULL OR lease_until < ?)').run(queue, Date.now()).changes;
  }

  async length(queue: string): Promise<number> {
    const now = Date.now();
    const row = this.db
      .prepare('SELECT COUNT(*) AS n FROM messages WHERE queue = ? AND due_at <= ? AND (lease_until IS NULL OR lease_until < ?)')
      .get(queue, now, now) as { n: number };
    return row.n;
  }

  /** Messages waiting for their due time (all queues). */
  async delayedCount(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM messages WHERE due_at > ?').get(Date.now()) as { n: number }).n;
  }

  async deadLetter(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): Promise<void> {
    const full = deadLetterRecord(delivery, record);
    // Record first, then ack: a crash between the two leaves a duplicate entry, never a lost message.
    this.db.prepare('INSERT OR REPLACE INTO dead_letters (id, record, failed_at) VALUES (?, ?, ?)').run(record.id, JSON.stringify(full), record.failedAt);
    await delivery.ack();
  }

  async listDeadLetters(page?: DeadLetterPage): Promise<DeadLetterRecord[]> {
    const { offset, limit } = pageBounds(page);
    const rows = this.db.prepare('SELECT record FROM dead_letters ORDER BY failed_at, id LIMIT ? OFFSET ?').all(limit, offset) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as DeadLetterRecord);
  }

  async deadLetterCount(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number }).n;
  }

  async takeDeadLetter(id: string, options: { failedAt?: number } = {}): Promise<DeadLetterRecord | undefined> {
    const row = (
      options.failedAt === undefined
        ? this.db.prepare('DELETE FROM dead_letters WHERE id = ? RETURNING record').get(id)
        : this.db.prepare('DELETE FROM dead_letters WHERE id = ? AND failed_at = ? RETURNING record').get(id, options.failedAt)
    ) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as DeadLetterRecord) : undefined;
  }

  async notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options: NotifyOptions = {}): Promise<void> {
    this.assertOpen();
    const now = Date.now();
    const row = JSON.stringify({ routingKey, headers: options.headers ?? {}, payload });
    this.db.prepare('INSERT INTO broadcasts (channel, payload, created_at) VALUES (?, ?, ?)').run(exchange.name, row, now);
    this.db.prepare('DELETE FROM broadcasts WHERE created_at < ?').run(now - BROADCAST_KEEP_MS);
    this.hints.notify();
  }

  async listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void): Promise<() => Promise<void>> {
    this.assertOpen();
    const set = this.subscriptions.get(exchange.name) ?? new Set();
    this.subscriptions.set(exchange.name, set);
    // Every process reads every row of the exchange; the binding decides which are this listener's.
    const listener = (n: Notice): void => {
      if (bindingMatches(exchange.type, bindingKey, n.routingKey)) onNotice(n);
    };
    set.add(listener);
    this.broadcastLoop ??= this.pollBroadcasts();
    return async () => {
      set.delete(listener);
    };
  }

  private async pollBroadcasts(): Promise<void> {
    // Only what is sent after the first listener is seen, as with a freshly bound queue.
    let last = (this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM broadcasts').get() as { s: number }).s;
    const read = this.db.prepare('SELECT seq, channel, payload FROM broadcasts WHERE seq > ? ORDER BY seq');
    while (!this.closed) {
      const rows = read.all(last) as { seq: number; channel: string; payload: string }[];
      for (const row of rows) {
        last = row.seq;
        const listeners = this.subscriptions.get(row.channel);
        if (!listeners?.size) continue;
        for (const listener of listeners) listener(JSON.parse(row.payload) as Notice);
      }
      if (rows.length) this.broadcastBackoff.reset();
      await this.broadcastBackoff.sleep();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.broadcastBackoff.wake();
    await Promise.all([...this.consumers].map((c) => c.releaseAll()));
    this.hints.off('change', this.onChange);
    ChangeHints.release(this.path);
    await this.broadcastLoop;
    this.db.close();
  }

  /** Used by consumers: claim up to `n` ready messages from `queues` (in order) in one write transaction. */
  claim(owner: string, queues: readonly string[], n: number): ClaimedRow[] {
    const now = Date.now();
    const leaseUntil = now + this.options.visibilityTimeout;
    const select = this.db.prepare(
      'SELECT id, envelope, delivery_count FROM messages WHERE queue = ? AND due_at <= ? AND (lease_until IS NULL OR lease_until < ?) ORDER BY priority DESC, id LIMIT ?',
    );
    const take = this.db.prepare('UPDATE messages SET owner = ?, lease_until = ?, delivery_count = delivery_count + 1 WHERE id = ?');
    const claimed: ClaimedRow[] = [];
    this.db
      .transaction(() => {
        for (const queue of queues) {
          if (claimed.length >= n) break;
          for (const row of select.all(queue, now, now, n - claimed.length) as { id: number; envelope: string; delivery_count: number }[]) {
            take.run(owner, leaseUntil, row.id);
            claimed.push({ id: row.id, queue, envelope: row.envelope, deliveryCount: row.delivery_count + 1 });
          }
        }
      })
      .immediate();
    return claimed;
  }
}
