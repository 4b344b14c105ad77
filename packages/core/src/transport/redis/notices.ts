/**
 * Notices (remote control, events) on Redis as kombu sends them: fanout and topic exchanges are
 * PUBLISHed kombu envelopes on `/<db>.<exchange>[/<routing key>]` (kombu's fanout_patterns), a
 * direct exchange (pidbox replies) is a list per bound queue, found through `_kombu.binding.*`.
 */
import type { Redis } from 'ioredis';
import { fromKombuEnvelope, toKombuEnvelope } from '../../protocol/kombu.js';
import type { WireMessage } from '../../protocol/message.js';
import { PollBackoff } from '../../util/backoff.js';
import { newId } from '../../util/ids.js';
import { bindingMatches, type ListenOptions, type Notice, type NoticeExchange, type NotifyOptions } from '../notice.js';
import { redisUnavailable } from '../../drivers/redis/connection.js';
import type { RedisSettings } from '../../drivers/redis/settings.js';
import { KEYS } from './keys.js';
import { SEP } from './scripts.js';

type Handler = (notice: Notice, channel: string) => void;

/** The notices of one Redis transport: its pub/sub listeners and its direct-exchange queues. */
export class RedisNotices {
  /** Pub/sub listeners by channel (exact) and by pattern (PSUBSCRIBE). */
  private readonly subscriptions = new Map<string, Set<Handler>>();
  private readonly patterns = new Map<string, Set<Handler>>();

  constructor(
    private readonly redis: Redis,
    private readonly sub: Redis,
    private readonly settings: RedisSettings,
    private readonly isClosed: () => boolean,
  ) {}

  /** Pub/sub channels are not keys: prefix them by hand so a keyPrefix isolates them too. */
  channel(name: string): string {
    return `${this.settings.keyPrefix}${name}`;
  }

  /** A message heard on a subscribed channel (`pattern`: the PSUBSCRIBE pattern it matched). */
  onMessage(channel: string, text: string, pattern?: string): void {
    const handlers = pattern === undefined ? this.subscriptions.get(channel) : this.patterns.get(pattern);
    if (!handlers?.size) return;
    const read = readNotice(text);
    if (!read) return; // not a kombu envelope with a JSON body: nothing for us
    const notice = { ...read, routingKey: '' };
    for (const handler of handlers) handler(notice, channel);
  }

  async notify(exchange: NoticeExchange, routingKey: string, payload: unknown, options: NotifyOptions = {}): Promise<void> {
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
      throw redisUnavailable(this.settings.redacted, err);
    }
  }

  private fanoutChannel(exchange: string, routingKey = ''): string {
    return this.channel(`/${this.settings.db}.${exchange}${routingKey ? `/${routingKey}` : ''}`);
  }

  async listen(exchange: NoticeExchange, bindingKey: string, onNotice: (notice: Notice) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
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
      if (set.size === 0 && !this.isClosed()) {
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
      while (active && !this.isClosed()) {
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
      if (!this.isClosed()) await this.redis.multi().srem(KEYS.binding(exchange.name), member).del(queue).exec().catch(() => undefined);
    };
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
