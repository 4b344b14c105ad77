/**
 * `redis://`, `rediss://`, `redis+sentinel://`: the transport itself — publishing, consuming
 * (through {@link RedisConsumer}), purge and length, and its lifecycle. Notices, the dead-letter
 * store and housekeeping (promote, restore) live in their own files beside it.
 */
import type { Redis } from 'ioredis';
import { TransportClosedError } from '../../errors.js';
import { toKombuEnvelope } from '../../protocol/kombu.js';
import type { WireMessage } from '../../protocol/message.js';
import type { Consumer, DeadLetterPage, DeadLetterRecord, Delivery, PublishOptions, Transport, TransportCapabilities } from '../transport.js';
import type { ListenOptions, Notice, NoticeExchange, NotifyOptions } from '../notice.js';
import { connectRedis, redisUnavailable, unsafeRedisSettings, warnIfUnsafe } from '../../drivers/redis/connection.js';
import type { RedisSettings } from '../../drivers/redis/settings.js';
import { RedisConsumer } from './consumer.js';
import { RedisDeadLetters } from './dead-letters.js';
import { RedisHousekeeping } from './housekeeping.js';
import { KEYS, queueKey, queueKeys, WAKE } from './keys.js';
import { RedisNotices } from './notices.js';
import { defineTransportScripts, SEP } from './scripts.js';

export interface RedisTransportOptions {
  readonly visibilityTimeout: number;
}

/**
 * `redis://` and `rediss://`: queues laid out as kombu lays them (lists, priority
 * sub-lists, `_kombu.binding.*`, the `unacked` hash and `unacked_index`), so Python
 * Celery and celeriac share queues. Fetching and recording a message as unacked is
 * one Lua step; a live owner renews its deliveries' index entries; any worker
 * restores entries past the visibility window under kombu's `unacked_mutex`.
 */
export class RedisTransport implements Transport {
  readonly kind = 'redis';
  readonly capabilities: TransportCapabilities = Object.freeze({
    priorities: 'lowFirst',
    delayedDelivery: true,
    fanout: true,
    confirms: true,
    visibilityTimeout: true,
    durable: true,
    crossProcess: true,
  });
  private readonly consumers = new Set<RedisConsumer>();
  private readonly boundQueues = new Set<string>();
  private readonly notices: RedisNotices;
  private readonly deadLetters: RedisDeadLetters;
  private readonly housekeeping: RedisHousekeeping;
  private wakeQueued = false;
  private closed = false;

  private constructor(
    readonly redis: Redis,
    private readonly sub: Redis,
    readonly settings: RedisSettings,
    readonly options: RedisTransportOptions,
  ) {
    defineTransportScripts(redis);
    this.notices = new RedisNotices(redis, sub, settings, () => this.closed);
    this.deadLetters = new RedisDeadLetters(redis, settings.redacted);
    this.housekeeping = new RedisHousekeeping({
      redis,
      keyPrefix: settings.keyPrefix,
      visibilityTimeout: options.visibilityTimeout,
      wakeChannel: this.channel(WAKE),
      renewOwn: async () => void (await Promise.all([...this.consumers].map((c) => c.renew()))),
    });
    sub.on('message', (channel: string, text: string) => this.onChannelMessage(channel, text));
    sub.on('pmessage', (pattern: string, channel: string, text: string) => this.notices.onMessage(channel, text, pattern));
  }

  static async open(settings: RedisSettings, options: RedisTransportOptions): Promise<RedisTransport> {
    const redis = await connectRedis(settings);
    const sub = await connectRedis(settings, 'subscriber');
    void warnIfUnsafe(redis, settings.redacted);
    const transport = new RedisTransport(redis, sub, settings, options);
    await sub.subscribe(transport.channel(WAKE));
    return transport;
  }

  /** Pub/sub channels are not keys: prefix them by hand so a keyPrefix isolates them too. */
  channel(name: string): string {
    return this.notices.channel(name);
  }

  private onChannelMessage(channel: string, text: string): void {
    if (channel !== this.channel(WAKE)) return this.notices.onMessage(channel, text);
    for (const c of this.consumers) c.wake();
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportClosedError('redis transport');
  }

  async publish(queue: string, message: WireMessage, options: PublishOptions = {}): Promise<void> {
    this.assertOpen();
    const envelope = JSON.stringify(toKombuEnvelope(message, { exchange: '', routingKey: queue }));
    const key = queueKey(queue, options.priority ?? 0);
    const pipe = this.redis.pipeline();
    if (!this.boundQueues.has(queue)) {
      // What kombu's queue_bind writes, so Python tools see the queue.
      pipe.sadd(KEYS.binding(queue), `${queue}${SEP}${SEP}${queue}`);
      this.boundQueues.add(queue);
    }
    if (options.notBefore !== undefined && options.notBefore > Date.now()) {
      pipe.zadd(KEYS.delayed, options.notBefore, `${key}${SEP}${envelope}`);
    } else {
      pipe.lpush(key, envelope);
      // One wake-up per tick is enough however many messages this tick publishes.
      if (!this.wakeQueued) {
        this.wakeQueued = true;
        setImmediate(() => (this.wakeQueued = false));
        pipe.publish(this.channel(WAKE), '');
      }
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipe.exec();
    } catch (err) {
      throw redisUnavailable(this.settings.redacted, err);
    }
    const failed = results?.find(([err]) => err);
    if (failed) throw redisUnavailable(this.settings.redacted, failed[0]);
    if (options.notBefore !== undefined) this.housekeeping.startPromoting();
  }

  async consume(queues: readonly string[], onDelivery: (d: Delivery) => void, options: { prefetch: number }): Promise<Consumer> {
    this.assertOpen();
    const redis = await this.consumerRedis();
    const consumer = new RedisConsumer({ redis, options: this.options }, [...queues], options.prefetch, onDelivery, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    this.housekeeping.start();
    consumer.start();
    return consumer;
  }

  private consumerConnection: Promise<Redis> | undefined;

  /**
   * Consumers get a connection of their own, without auto-pipelining: their commands are batches
   * already (one script call per fetch or per event-loop turn of acks), and wrapping each in a
   * pipeline of one cost ~10 % of a c=100 drain. Publishers keep it: many sends in a tick share a write.
   */
  private consumerRedis(): Promise<Redis> {
    this.consumerConnection ??= connectRedis(this.settings, 'consumer').then((redis) => {
      defineTransportScripts(redis);
      return redis;
    });
    // A failed opening is forgotten, so the next consume tries again.
    this.consumerConnection.catch(() => (this.consumerConnection = undefined));
    return this.consumerConnection;
  }

  /** kombu's restore_visible (see `RedisHousekeeping.restoreVisible`): how many messages were put back. */
  restoreVisible(): Promise<number> {
    return this.housekeeping.restoreVisible();
  }

  async purge(queue: string): Promise<number> {
    const keys = queueKeys(queue);
    const results = await this.redis.multi().llen(keys[0]!).llen(keys[1]!).llen(keys[2]!).llen(keys[3]!).del(...keys).exec();
    return (results ?? []).slice(0, 4).reduce((sum, [, n]) => sum + Number(n), 0);
  }

  async length(queue: string): Promise<number> {
    const pipe = this.redis.pipeline();
    for (const key of queueKeys(queue)) pipe.llen(key);
    const results = await pipe.exec();
    return (results ?? []).reduce((sum, [, n]) => sum + Number(n), 0);
  }

  deadLetter(delivery: Delivery, record: Omit<DeadLetterRecord, 'wire' | 'queue' | 'deliveryCount'>): Promise<void> {
    return this.deadLetters.deadLetter(delivery, record);
  }

  listDeadLetters(page?: DeadLetterPage): Promise<DeadLetterRecord[]> {
    return this.deadLetters.list(page);
  }

  deadLetterCount(): Promise<number> {
    return this.deadLetters.count();
  }

  takeDeadLetter(id: string, options: { failedAt?: number } = {}): Promise<DeadLetterRecord | undefined> {
    return this.deadLetters.take(id, options);
  }

  async notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options: NotifyOptions = {}): Promise<void> {
    this.assertOpen();
    await this.notices.notify(exchange, routingKey, payload, options);
  }

  async listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
    this.assertOpen();
    return this.notices.listen(exchange, bindingKey, onNotice, options);
  }

  unsafeSettings(): Promise<string[]> {
    return unsafeRedisSettings(this.redis, this.settings.redacted);
  }

  /** Messages waiting in the delayed set (all queues). */
  async delayedCount(): Promise<number> {
    return this.redis.zcard(KEYS.delayed);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.housekeeping.close();
    await Promise.all([...this.consumers].map((c) => c.releaseAll()));
    this.sub.disconnect();
    const consumer = await this.consumerConnection?.catch(() => undefined);
    await Promise.all([consumer, this.redis].map(async (r) => r?.quit().catch(() => r.disconnect())));
  }
}
