/**
 * The SQLite consumer's primitives on top of the shared leased poll ({@link LeasedPollConsumer}):
 * a fetch is a `BEGIN IMMEDIATE` claim that stamps each row with this consumer's owner token and
 * a lease; renewals extend every row the token owns; settles are fenced by the token.
 */
import { LeaseLostError } from '../../errors.js';
import { readKombuEnvelope } from '../../protocol/kombu.js';
import { newId } from '../../util/ids.js';
import type { Db } from '../../drivers/sqlite/db.js';
import { LeasedPollConsumer } from '../leased-poll.js';
import type { Delivery } from '../transport.js';

/** One claimed row. */
export interface ClaimedRow {
  readonly id: number;
  readonly queue: string;
  readonly envelope: string;
  readonly deliveryCount: number;
}

/** What a consumer needs of its transport. */
export interface SqliteConsumerHost {
  readonly db: Db;
  readonly options: { readonly visibilityTimeout: number };
  /** Claim up to `n` ready messages from `queues` (in order) for `owner`, in one write transaction. */
  claim(owner: string, queues: readonly string[], n: number): ClaimedRow[];
}

export class SqliteConsumer extends LeasedPollConsumer<number, Delivery> {
  /** The owner token every row this consumer claims carries: settles and renewals match on it. */
  readonly token = newId();

  constructor(
    private readonly host: SqliteConsumerHost,
    private readonly queues: readonly string[],
    prefetch: number,
    onDelivery: (d: Delivery) => void,
    onGone: () => void,
  ) {
    super({ name: 'sqlite', visibilityTimeout: host.options.visibilityTimeout, prefetch, backoff: { minMs: 1, maxMs: 250 } }, onDelivery, onGone);
  }

  protected async fetch(n: number): Promise<number> {
    // SQLITE_BUSY past the busy timeout throws: the loop backs off and tries again.
    const rows = this.host.claim(this.token, this.queues, n);
    for (const row of rows) this.deliver(row);
    return rows.length;
  }

  protected async renewLeases(): Promise<void> {
    // Every row this token owns, in one statement (busy or closed: the next tick tries again, well inside the lease).
    this.host.db.prepare('UPDATE messages SET lease_until = ? WHERE owner = ?').run(Date.now() + this.visibilityTimeout, this.token);
  }

  /** The client is closing: what it had not settled goes back to the queue now rather than at lease expiry. */
  protected async giveBack(): Promise<void> {
    this.host.db.prepare('UPDATE messages SET owner = NULL, lease_until = NULL WHERE owner = ?').run(this.token);
  }

  private deliver(row: ClaimedRow): void {
    const db = this.host.db;
    let lost = false;
    const settle = (sql: string, what: string): Promise<void> => {
      if (lost) return Promise.reject(new LeaseLostError(what));
      if (!this.holds(row.id, delivery)) return Promise.resolve();
      let changes: number;
      try {
        changes = db.prepare(sql).run(row.id, this.token).changes;
      } catch (err) {
        // Busy or failing file: still ours (and renewed), so a retry runs it again.
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      this.release(row.id, delivery);
      return changes === 1 ? Promise.resolve() : Promise.reject(new LeaseLostError(what));
    };
    const { wire } = readKombuEnvelope(row.envelope);
    const delivery: Delivery = {
      message: wire,
      queue: row.queue,
      redelivered: row.deliveryCount > 1,
      deliveryCount: row.deliveryCount,
      ack: () => settle('DELETE FROM messages WHERE id = ? AND owner = ?', 'ack'),
      reject: ({ requeue, delayMs }) =>
        requeue
          ? settle(`UPDATE messages SET owner = NULL, lease_until = NULL, due_at = ${Date.now() + (delayMs ?? 0)} WHERE id = ? AND owner = ?`, 'reject')
          : settle('DELETE FROM messages WHERE id = ? AND owner = ?', 'reject'),
      // Still ours when the row still carries our token: a lapsed lease was claimed under another.
      // Settled already (early acks): no lease left to fence. Lost: let go of its slot.
      leaseHeld: async () => {
        if (lost) return false;
        if (!this.holds(row.id, delivery)) return true;
        if (db.prepare('SELECT 1 FROM messages WHERE id = ? AND owner = ?').get(row.id, this.token) !== undefined) return true;
        lost = true;
        this.release(row.id, delivery);
        return false;
      },
    };
    this.hold(row.id, delivery);
  }
}
