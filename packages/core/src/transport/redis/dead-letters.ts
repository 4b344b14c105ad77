/**
 * The Redis dead-letter store (owner: the transport): records in one hash by id, listed a page at a
 * time through a sorted set scored by when each failed; moving a delivery there is one Lua step
 * fenced by its delivery count, like every settle.
 */
import type { Redis } from 'ioredis';
import { LeaseLostError } from '../../errors.js';
import { redisUnavailable } from '../../drivers/redis/connection.js';
import { deadLetterRecord, pageBounds, type DeadLetterPage, type DeadLetterRecord, type Delivery } from '../transport.js';
import { RedisDelivery } from './delivery.js';
import { KEYS } from './keys.js';

export class RedisDeadLetters {
  constructor(
    private readonly redis: Redis,
    private readonly redacted: string,
  ) {}

  async deadLetter(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): Promise<void> {
    const full = deadLetterRecord(delivery, record);
    // Handed on to another consumer: the record is not ours to write.
    if (delivery instanceof RedisDelivery && delivery.lost) throw new LeaseLostError('dead-letter');
    if (!(delivery instanceof RedisDelivery) || delivery.settled) {
      // Not one of ours, or already acknowledged (early acks): there is only the record to write.
      await this.redis.multi().hset(KEYS.deadLetters, record.id, JSON.stringify(full)).zadd(KEYS.deadLetterIndex, record.failedAt, record.id).exec();
      await delivery.ack();
      return;
    }
    delivery.settled = true;
    let done: number;
    try {
      done = (await this.redis.celeriacDeadLetter(
        KEYS.unacked, KEYS.unackedIndex, KEYS.deliveries, KEYS.deadLetters, KEYS.deadLetterIndex,
        delivery.tag, record.id, JSON.stringify(full), delivery.deliveryCount, record.failedAt,
      )) as number;
    } catch (err) {
      // Redis away: still ours, so a retry sends it again (and renewals go on meanwhile).
      delivery.settled = false;
      throw redisUnavailable(this.redacted, err);
    }
    delivery.release();
    if (!done) throw new LeaseLostError('dead-letter');
  }

  /** A page read through the time index: one ZRANGE and one HMGET, whatever the store's size. */
  async list(page?: DeadLetterPage): Promise<DeadLetterRecord[]> {
    const { offset, limit } = pageBounds(page);
    await this.index();
    for (;;) {
      const ids = await this.redis.zrange(KEYS.deadLetterIndex, offset, offset + limit - 1);
      if (ids.length === 0) return [];
      const texts = await this.redis.hmget(KEYS.deadLetters, ...ids);
      const gone = ids.filter((_, i) => texts[i] === null);
      // Index entries of records taken by an older version (no ZREM): dropped, and the page read again.
      if (gone.length) {
        await this.redis.zrem(KEYS.deadLetterIndex, ...gone);
        continue;
      }
      return texts.flatMap((t) => {
        try {
          return [JSON.parse(t!) as DeadLetterRecord];
        } catch {
          return []; // not a record of ours: left out of every page rather than failing them all
        }
      });
    }
  }

  /** Records written before the index existed (or by a failed half-write) get an entry, a scan at a time. */
  private async index(): Promise<void> {
    const [[, stored], [, indexed]] = (await this.redis.multi().hlen(KEYS.deadLetters).zcard(KEYS.deadLetterIndex).exec()) as [[null, number], [null, number]];
    if (indexed === stored) return;
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(KEYS.deadLetters, cursor, 'COUNT', 500);
      cursor = next;
      const args: (string | number)[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        let at = 0;
        try {
          at = (JSON.parse(flat[i + 1]!) as DeadLetterRecord).failedAt;
        } catch {
          // Unreadable: listed first.
        }
        args.push(at, flat[i]!);
      }
      if (args.length) await this.redis.zadd(KEYS.deadLetterIndex, 'NX', ...args);
    } while (cursor !== '0');
  }

  count(): Promise<number> {
    return this.redis.hlen(KEYS.deadLetters);
  }

  async take(id: string, options: { failedAt?: number } = {}): Promise<DeadLetterRecord | undefined> {
    const record = (await this.redis.celeriacTakeDeadLetter(KEYS.deadLetters, KEYS.deadLetterIndex, id, options.failedAt ?? '')) as string | null;
    return record ? (JSON.parse(record) as DeadLetterRecord) : undefined;
  }
}
