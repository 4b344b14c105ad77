import type { Redis, Result } from 'ioredis';
import { LeaseLostError, TransportClosedError } from '../../errors.js';
import { fromKombuEnvelope, toKombuEnvelope } from '../../protocol/kombu.js';
import type { WireMessage } from '../../protocol/message.js';
import { PollBackoff } from '../../util/backoff.js';
import { newId } from '../../util/ids.js';
import { deadLetterRecord, pageBounds, type Consumer, type DeadLetterPage, type DeadLetterRecord, type Delivery, type PublishOptions, type Transport, type TransportCapabilities } from '../transport.js';
import { connectRedis, RedisUnavailableError, unsafeRedisSettings, warnIfUnsafe, type RedisSettings } from './connection.js';
import { bindingMatches, type ListenOptions, type Notice, type NoticeExchange, type NotifyOptions } from '../notice.js';
import { RedisConsumer, RedisDelivery } from './consumer.js';
import { KEYS, queueKey, queueKeys, readUnackedEntry, WAKE } from './keys.js';
import { ACK, ACK_FETCH, DEAD_LETTER, FETCH, NOTIFY_DIRECT, PROMOTE, RELEASE_LOCK, RENEW, REQUEUE, RESTORE_ONE, SEP, TAKE_DEAD_LETTER } from './scripts.js';

/** Longest hold of kombu's `unacked_mutex` by a restore pass. */
const RESTORE_MUTEX_MS = 5000;

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
  /** Pub/sub listeners by channel (exact) and by pattern (PSUBSCRIBE). */
  private readonly subscriptions = new Map<string, Set<(notice: Notice, channel: string) => void>>();
  private readonly patterns = new Map<string, Set<(notice: Notice, channel: string) => void>>();
  private readonly boundQueues = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  private promoteTimer: NodeJS.Timeout | undefined;
  private wakeQueued = false;
  private closed = false;

  private constructor(
    readonly redis: Redis,
    private readonly sub: Redis,
    readonly settings: RedisSettings,
    readonly options: RedisTransportOptions,
  ) {
    defineScripts(redis);
    sub.on('message', (channel: string, text: string) => this.onChannelMessage(channel, text, this.subscriptions.get(channel)));
    sub.on('pmessage', (pattern: string, channel: string, text: string) => this.onChannelMessage(channel, text, this.patterns.get(pattern)));
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
    return `${this.settings.keyPrefix}${name}`;
  }

  private onChannelMessage(channel: string, text: string, handlers: Set<(notice: Notice, channel: string) => void> | undefined): void {
    if (channel === this.channel(WAKE)) {
      for (const c of this.consumers) c.wake();
      return;
    }
    if (!handlers?.size) return;
    const read = readNotice(text);
    if (!read) return; // not a kombu envelope with a JSON body: nothing for us
    const notice = { ...read, routingKey: '' };
    for (const handler of handlers) handler(notice, channel);
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
      throw new RedisUnavailableError(this.settings.redacted, err);
    }
    const failed = results?.find(([err]) => err);
    if (failed) throw new RedisUnavailableError(this.settings.redacted, failed[0]);
    // Any celeriac process promotes due messages, so a delayed task reaches even a fleet of Python workers.
    if (options.notBefore !== undefined) this.startPromoting();
  }

  async consume(queues: readonly string[], onDelivery: (d: Delivery) => void, options: { prefetch: number }): Promise<Consumer> {
    this.assertOpen();
    const redis = await this.consumerRedis();
    const consumer = new RedisConsumer({ redis, options: this.options }, [...queues], options.prefetch, onDelivery, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    this.startHousekeeping();
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
      defineScripts(redis);
      return redis;
    });
    // A failed opening is forgotten, so the next consume tries again.
    this.consumerConnection.catch(() => (this.consumerConnection = undefined));
    return this.consumerConnection;
  }

  /** Promote due delayed messages and restore abandoned ones, while this process consumes. */
  private startHousekeeping(): void {
    if (this.timers.length) return;
    const restoreEvery = Math.max(200, Math.min(5000, Math.floor(this.options.visibilityTimeout / 4)));
    const restore = setInterval(() => void this.restoreVisible().catch(() => undefined), restoreEvery);
    this.timers.push(restore);
    this.startPromoting();
  }

  private promoting = false;
  private startPromoting(): void {
    if (this.promoting) return;
    this.promoting = true;
    void this.promote();
  }

  /** Move due delayed messages to their queues, then sleep until the next one is due (at most 1 s). */
  private async promote(): Promise<void> {
    if (this.closed) return;
    let wait = 1000;
    try {
      const [, next] = (await this.redis.celeriacPromote(KEYS.delayed, Date.now(), 500, this.settings.keyPrefix, this.channel(WAKE))) as [number, number];
      if (next >= 0) wait = Math.max(5, Math.min(1000, next - Date.now()));
    } catch {
      // Redis away: try again shortly.
    }
    if (this.closed) return;
    this.promoteTimer = setTimeout(() => void this.promote(), wait);
  }

  /**
   * kombu's restore_visible: under `unacked_mutex`, put back every unacknowledged
   * message whose index entry is older than the visibility window (its owner died
   * or froze; live owners renew theirs), marked redelivered as kombu marks it.
   */
  async restoreVisible(): Promise<number> {
    const token = newId();
    // Held briefly: a pass takes milliseconds (each RESTORE_ONE is atomic and fenced on its own), and a
    // holder cut off mid-pass (a partition, a kill) must not stop every restore for long — at 30 s it
    // kept messages whose fetch replies were lost in a partition waiting 30 s after it healed.
    const locked = await this.redis.set(KEYS.unackedMutex, token, 'PX', Math.min(RESTORE_MUTEX_MS, this.options.visibilityTimeout), 'NX');
    if (!locked) return 0;
    let restored = 0;
    try {
      // This process's own deliveries first: after an outage its renewals may be behind, and it must
      // never restore what it still runs.
      await Promise.all([...this.consumers].map((c) => c.renew()));
      const cutoff = (Date.now() - this.options.visibilityTimeout) / 1000;
      const tags = await this.redis.zrangebyscore(KEYS.unackedIndex, 0, cutoff, 'LIMIT', 0, 200);
      for (const tag of tags) {
        const entry = await this.redis.hget(KEYS.unacked, tag);
        if (!entry) {
          await this.redis.zrem(KEYS.unackedIndex, tag);
          continue;
        }
        const [payload, , routingKey] = readUnackedEntry(entry);
        let text: string;
        let key = routingKey;
        if (typeof payload === 'object' && payload !== null) {
          const env = payload as { headers?: Record<string, unknown>; properties?: { delivery_info?: Record<string, unknown>; priority?: number } };
          if (env.headers) env.headers.redelivered = true;
          if (env.properties?.delivery_info) env.properties.delivery_info.redelivered = true;
          key = queueKey(routingKey, env.properties?.priority ?? 0);
          text = JSON.stringify(payload);
        } else {
          text = payload;
        }
        restored += (await this.redis.celeriacRestoreOne(KEYS.unacked, KEYS.unackedIndex, key, tag, cutoff, text)) as number;
      }
      if (restored) await this.redis.publish(this.channel(WAKE), '');
    } finally {
      await this.redis.celeriacReleaseLock(KEYS.unackedMutex, token);
    }
    return restored;
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
      throw new RedisUnavailableError(this.settings.redacted, err);
    }
    delivery.release();
    if (!done) throw new LeaseLostError('dead-letter');
  }

  /** A page read through the time index: one ZRANGE and one HMGET, whatever the store's size. */
  async listDeadLetters(page?: DeadLetterPage): Promise<DeadLetterRecord[]> {
    const { offset, limit } = pageBounds(page);
    await this.indexDeadLetters();
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
  private async indexDeadLetters(): Promise<void> {
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

  async deadLetterCount(): Promise<number> {
    return this.redis.hlen(KEYS.deadLetters);
  }

  async takeDeadLetter(id: string, options: { failedAt?: number } = {}): Promise<DeadLetterRecord | undefined> {
    const record = (await this.redis.celeriacTakeDeadLetter(KEYS.deadLetters, KEYS.deadLetterIndex, id, options.failedAt ?? '')) as string | null;
    return record ? (JSON.parse(record) as DeadLetterRecord) : undefined;
  }

  /**
   * As kombu does it on Redis: fanout and topic exchanges (Celery turns `celeryev` into a fanout on
   * Redis) PUBLISH a kombu envelope on `/<db>.<exchange>`, or `/<db>.<exchange>/<routing key>`
   * (kombu's fanout_patterns); a direct exchange (pidbox replies) pushes onto every list bound
   * in `_kombu.binding.<exchange>` with that routing key.
   */
  async notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options: NotifyOptions = {}): Promise<void> {
    this.assertOpen();
    const wire: WireMessage = {
      body: JSON.stringify(payload),
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: { ...options.headers },
      properties: { delivery_mode: exchange.type === 'direct' ? 1 : 2, priority: 0 },
    };
    const text = JSON.stringify(toKombuEnvelope(wire, { exchange: exchange.name, routingKey }));
    try {
      if (exchange.type === 'direct') {
        await this.redis.celeriacNotifyDirect(KEYS.binding(exchange.name), routingKey, text, this.settings.keyPrefix, options.ttlMs ?? 60_000);
      } else {
        await this.redis.publish(this.fanoutChannel(exchange.name, routingKey), text);
      }
    } catch (err) {
      throw new RedisUnavailableError(this.settings.redacted, err);
    }
  }

  private fanoutChannel(exchange: string, routingKey = ''): string {
    return this.channel(`/${this.settings.db}.${exchange}${routingKey ? `/${routingKey}` : ''}`);
  }

  async listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
    this.assertOpen();
    if (exchange.type === 'direct') return this.listenDirect(exchange, bindingKey, onNotice, options);
    // kombu subscribes a fanout queue bound with a key to `<channel>/<key>` with '#' as a glob '*';
    // a topic binding is then checked word by word here.
    const exact = bindingKey === '';
    const name = exact ? this.fanoutChannel(exchange.name) : `${this.fanoutChannel(exchange.name)}/${bindingKey.replace(/#/g, '*')}`;
    const prefix = `${this.fanoutChannel(exchange.name)}/`;
    const handler = (notice: Notice, channel: string): void => {
      const routingKey = channel.startsWith(prefix) ? channel.slice(prefix.length) : '';
      if (exchange.type === 'topic' && !exact && !bindingMatches('topic', bindingKey, routingKey)) return;
      onNotice({ ...notice, routingKey });
    };
    const registry = exact ? this.subscriptions : this.patterns;
    let set = registry.get(name);
    if (!set) {
      set = new Set();
      registry.set(name, set);
      await (exact ? this.sub.subscribe(name) : this.sub.psubscribe(name));
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0 && !this.closed) {
        registry.delete(name);
        await (exact ? this.sub.unsubscribe(name) : this.sub.punsubscribe(name)).catch(() => undefined);
      }
    };
  }

  /** A direct-exchange queue as kombu keeps one: a binding member and a list, read until unlistened. */
  private async listenDirect(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void, options: ListenOptions): Promise<() => Promise<void>> {
    const queue = options.queue ?? `celeriac.notice.${newId()}`;
    const member = `${bindingKey}${SEP}${SEP}${queue}`;
    await this.redis.sadd(KEYS.binding(exchange.name), member);
    const backoff = new PollBackoff(5, 50);
    let active = true;
    const loop = (async () => {
      while (active && !this.closed) {
        const text = await this.redis.rpop(queue).catch(() => null);
        if (text === null) {
          await backoff.sleep();
          continue;
        }
        backoff.reset();
        const notice = readNotice(text);
        if (notice) onNotice({ ...notice, routingKey: bindingKey });
      }
    })();
    return async () => {
      active = false;
      backoff.wake();
      await loop;
      if (!this.closed) await this.redis.multi().srem(KEYS.binding(exchange.name), member).del(queue).exec().catch(() => undefined);
    };
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
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.promoteTimer);
    await Promise.all([...this.consumers].map((c) => c.releaseAll()));
    this.sub.disconnect();
    const consumer = await this.consumerConnection?.catch(() => undefined);
    await Promise.all([consumer, this.redis].map(async (r) => r?.quit().catch(() => r.disconnect())));
  }
}

/** The transport's Lua scripts, as commands of a connection. */
function defineScripts(redis: Redis): void {
  for (const [name, lua, keys] of [
    ['celeriacFetch', FETCH, undefined],
    ['celeriacAckFetch', ACK_FETCH, undefined],
    ['celeriacAck', ACK, 3],
    ['celeriacRenew', RENEW, 3],
    ['celeriacRequeue', REQUEUE, 4],
    ['celeriacDeadLetter', DEAD_LETTER, 5],
    ['celeriacPromote', PROMOTE, 1],
    ['celeriacTakeDeadLetter', TAKE_DEAD_LETTER, 2],
    ['celeriacRestoreOne', RESTORE_ONE, 3],
    ['celeriacReleaseLock', RELEASE_LOCK, 1],
    ['celeriacNotifyDirect', NOTIFY_DIRECT, 1],
  ] as const) {
    redis.defineCommand(name, keys === undefined ? { lua } : { lua, numberOfKeys: keys });
  }
}

/** A kombu envelope read as a notice (its body JSON); undefined when it is not one. */
function readNotice(text: string): Omit<Notice, 'routingKey'> | undefined {
  try {
    const { wire } = fromKombuEnvelope(text);
    return { payload: JSON.parse(wire.body), headers: wire.headers };
  } catch {
    return undefined;
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    // The consumer reads fetch replies as Buffers: ioredis's `…Buffer` forms of the two scripts.
    celeriacFetchBuffer(numKeys: number, ...args: (string | number)[]): Result<unknown, Context>;
    celeriacAckFetchBuffer(numKeys: number, ...args: (string | number)[]): Result<unknown, Context>;
    celeriacAck(...args: (string | number)[]): Result<unknown, Context>;
    celeriacRenew(...args: (string | number)[]): Result<unknown, Context>;
    celeriacRequeue(...args: (string | number)[]): Result<unknown, Context>;
    celeriacDeadLetter(...args: (string | number)[]): Result<unknown, Context>;
    celeriacPromote(...args: (string | number)[]): Result<unknown, Context>;
    celeriacTakeDeadLetter(...args: (string | number)[]): Result<unknown, Context>;
    celeriacRestoreOne(...args: (string | number)[]): Result<unknown, Context>;
    celeriacReleaseLock(...args: (string | number)[]): Result<unknown, Context>;
    celeriacNotifyDirect(...args: (string | number)[]): Result<unknown, Context>;
  }
}
