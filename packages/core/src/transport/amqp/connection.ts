import { readFileSync } from 'node:fs';
import type { Channel, ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import { BrokerError, ConfigError, ErrorCodes } from '../../errors.js';
import type { ParsedUrl } from '../../util/url.js';

/** Settings read from an `amqp://` / `amqps://` URL. */
export interface AmqpSettings {
  readonly connect: Options.Connect;
  readonly socket: Record<string, unknown>;
  /** How long a publish waits for a connection, an alarm to clear, or a confirm, before failing. */
  readonly publishTimeoutMs: number;
  readonly redacted: string;
}

const positiveInt = (url: ParsedUrl, name: string, fallback: number): number => {
  const raw = url.url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new ConfigError(`${url.redacted}: ?${name} must be a whole number, got ${JSON.stringify(raw)}`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  return n;
};

/**
 * `amqp://[user:password@]host[:port][/vhost][?heartbeat=10&publishTimeout=10000]`.
 * `amqps://` is TLS with certificate verification on, against the system CAs or `?ca=<file>`
 * (`?tlsInsecure=true` turns verification off, for tests only). Heartbeats default to 10 s,
 * so a dead peer is noticed within ~20 s even when no traffic flows.
 */
export function amqpSettings(url: ParsedUrl): AmqpSettings {
  const u = url.url;
  const tls = url.scheme === 'amqps';
  const vhost = decodeURIComponent(u.pathname.replace(/^\//, '')) || '/';
  const ca = u.searchParams.get('ca');
  return {
    connect: {
      protocol: tls ? 'amqps' : 'amqp',
      hostname: u.hostname || '127.0.0.1',
      port: u.port ? Number(u.port) : tls ? 5671 : 5672,
      username: u.username ? decodeURIComponent(u.username) : 'guest',
      password: u.password ? decodeURIComponent(u.password) : 'guest',
      vhost,
      heartbeat: positiveInt(url, 'heartbeat', 10),
      frameMax: 131072,
    },
    socket: {
      timeout: positiveInt(url, 'connectTimeout', 5000),
      ...(tls ? { servername: u.hostname, rejectUnauthorized: u.searchParams.get('tlsInsecure') !== 'true', ...(ca ? { ca: [readFileSync(ca)] } : {}) } : {}),
    },
    publishTimeoutMs: positiveInt(url, 'publishTimeout', 10_000),
    redacted: url.redacted,
  };
}

/** The text RabbitMQ gave for a channel error, without amqplib's framing. */
export function brokerReason(err: unknown): string {
  const msg = (err as Error)?.message ?? String(err);
  return /with message "([^"]*)"/.exec(msg)?.[1] ?? msg;
}

interface Pending {
  readonly exchange: string;
  readonly routingKey: string;
  readonly correlationId: unknown;
  returned: string | undefined;
}

/**
 * One AMQP connection that comes back: after a drop or a broker restart it
 * reconnects with backoff and runs every registered `onConnect` hook (consumers
 * re-declare and re-consume). Publishes go through a confirm channel and
 * resolve only on the broker's ack; while disconnected or under a resource alarm
 * they wait up to `publishTimeoutMs`, then fail with a named {@link BrokerError}.
 */
export class AmqpSession {
  private model: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private admin: Channel | undefined;
  private readonly pending = new Set<Pending>();
  private readonly hooks = new Set<(model: ChannelModel) => Promise<void>>();
  private readonly waiters = new Set<() => void>();
  /** Queues and exchanges declared on the current connection (declaring again is a wasted round trip). */
  readonly declared = new Set<string>();
  /** Reason of the current resource alarm (`connection.blocked`), if any. */
  blocked: string | undefined;
  private closed = false;
  private generation = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly settings: AmqpSettings,
    private readonly log: (message: string) => void,
  ) {}

  /** Connect once (failing fast with BROKER_UNAVAILABLE when the broker is unreachable); later drops reconnect on their own. */
  static async open(settings: AmqpSettings, log: (message: string) => void = (m) => process.emitWarning(m)): Promise<AmqpSession> {
    const session = new AmqpSession(settings, log);
    await session.connect();
    return session;
  }

  private corked: { uncork(): void } | undefined;

  /**
   * Gather the frames written until the event loop turns into one socket write.
   * amqplib writes every frame (each ack, each publish) on its own; under load
   * that is one syscall per frame, and acks come in bursts.
   */
  coalesceWrites(): void {
    if (this.corked) return;
    const socket = (this.model as unknown as { connection?: { stream?: { cork?(): void; uncork(): void } } } | undefined)?.connection?.stream;
    if (!socket?.cork) return;
    socket.cork();
    this.corked = socket;
    setImmediate(() => {
      this.corked = undefined;
      socket.uncork();
    });
  }

  /** A number that changes on every reconnect: deliveries from an older one cannot be acked any more. */
  get currentGeneration(): number {
    return this.generation;
  }

  private async connect(): Promise<void> {
    const { connect } = await import('amqplib');
    let model: ChannelModel;
    try {
      model = await connect(this.settings.connect, this.settings.socket);
    } catch (err) {
      throw new BrokerError(ErrorCodes.BROKER_UNAVAILABLE, `Cannot reach the AMQP broker at ${this.settings.redacted}: ${(err as Error).message}`, {
        url: this.settings.redacted,
      });
    }
    model.on('error', () => undefined); // 'close' follows; reconnecting is decided there.
    model.on('blocked', (reason: string) => {
      this.blocked = reason || 'resource alarm';
      this.log(`AMQP broker blocked publishing: ${this.blocked}`);
    });
    model.on('unblocked', () => {
      this.blocked = undefined;
      this.wakeWaiters();
    });
    model.on('close', () => this.onClose(model));
    this.model = model;
    this.generation++;
    this.declared.clear();
    this.publisher = undefined;
    this.admin = undefined;
    for (const hook of this.hooks) await hook(model).catch((err: unknown) => this.log(`AMQP recovery step failed: ${(err as Error).message}`));
    this.wakeWaiters();
  }

  private onClose(model: ChannelModel): void {
    if (this.model !== model) return;
    this.model = undefined;
    this.publisher = undefined;
    this.admin = undefined;
    this.blocked = undefined;
    if (this.closed) return;
    this.log(`AMQP connection to ${this.settings.redacted} lost; reconnecting`);
    this.scheduleReconnect(100);
  }

  private scheduleReconnect(delay: number): void {
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch(() => this.scheduleReconnect(Math.min(delay * 2, 5000)));
    }, delay);
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Run `hook` now (when connected) and after every reconnect. Returns its remover. */
  async onConnect(hook: (model: ChannelModel) => Promise<void>): Promise<() => void> {
    this.hooks.add(hook);
    if (this.model) await hook(this.model);
    return () => this.hooks.delete(hook);
  }

  /** Wait (up to the publish timeout) for a connection that is up and not blocked. */
  async ready(what: string): Promise<ChannelModel> {
    const deadline = Date.now() + this.settings.publishTimeoutMs;
    while (!this.model || this.blocked) {
      if (this.closed) throw new BrokerError(ErrorCodes.TRANSPORT_CLOSED, `${what}: the AMQP transport is closed`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw this.blocked
          ? new BrokerError(ErrorCodes.BROKER_BLOCKED, `${what}: the broker has blocked publishing (${this.blocked}) for more than ${this.settings.publishTimeoutMs} ms`)
          : new BrokerError(ErrorCodes.BROKER_UNAVAILABLE, `${what}: no connection to the AMQP broker at ${this.settings.redacted} for ${this.settings.publishTimeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        this.waiters.add(done);
      });
    }
    return this.model;
  }

  private async publisherChannel(): Promise<ConfirmChannel> {
    if (this.publisher) return this.publisher;
    const model = await this.ready('publish');
    const ch = this.hold('publisher', await model.createConfirmChannel());
    ch.on('return', (msg: Message) => {
      // Returns arrive before the ack of the same publish, in order: the oldest matching pending publish is it.
      for (const p of this.pending) {
        if (p.returned === undefined && p.exchange === msg.fields.exchange && p.routingKey === msg.fields.routingKey && p.correlationId === msg.properties.correlationId) {
          const fields = msg.fields as unknown as { replyCode?: number; replyText?: string };
          p.returned = `${fields.replyCode ?? ''} ${fields.replyText ?? 'returned'}`.trim();
          break;
        }
      }
    });
    return ch;
  }

  /** Keep `ch` in `slot` until it closes; its errors surface as that close, never as a thrown 'error' event. */
  private hold<T extends Channel>(slot: 'publisher' | 'admin', ch: T): T {
    ch.on('error', () => undefined);
    ch.on('close', () => {
      if (this[slot] === ch) this[slot] = undefined;
    });
    if (slot === 'publisher') this.publisher = ch as unknown as ConfirmChannel;
    else this.admin = ch;
    return ch;
  }

  /**
   * A channel for declarations and queries. A failed declaration closes only this
   * channel (the next call opens another), never the publisher or a consumer.
   */
  async adminChannel(): Promise<Channel> {
    if (this.admin) return this.admin;
    const model = await this.ready('declare');
    return this.hold('admin', await model.createChannel());
  }

  /**
   * Publish and resolve once the broker confirms. `mandatory` messages that no
   * queue takes reject with UNROUTABLE; a connection lost before the confirm
   * rejects with BROKER_UNAVAILABLE (the outcome is unknown: send again with the
   * same task id).
   */
  async publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    // Nothing is written while disconnected or blocked: it waits here, up to the deadline, then fails by name.
    await this.ready('publish');
    const ch = await this.publisherChannel();
    const pending: Pending = { exchange, routingKey, correlationId: options.correlationId, returned: undefined };
    this.pending.add(pending);
    try {
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const arm = (): void => {
          timer = setTimeout(() => {
            // Written while the broker blocks us: it holds the message and will confirm once the alarm clears,
            // so keep waiting (failing now could report as lost a task that later runs).
            if (this.blocked && this.publisher === ch) return arm();
            // A confirm that never comes (e.g. a queue that is not accepting) must not stall every later publish
            // behind it: retire this channel; its other unconfirmed publishes fail as unknown too, and are retried.
            if (this.publisher === ch) {
              this.publisher = undefined;
              ch.close().catch(() => undefined);
            }
            reject(
              new BrokerError(
                ErrorCodes.BROKER_UNAVAILABLE,
                `publish to ${exchange || '(default exchange)'}/${routingKey}: not confirmed by the broker within ${this.settings.publishTimeoutMs} ms; the outcome is unknown, send again with the same task id`,
              ),
            );
          }, this.settings.publishTimeoutMs);
        };
        arm();
        try {
          ch.publish(exchange, routingKey, content, options, (err) => {
            clearTimeout(timer);
            if (err) {
              reject(new BrokerError(ErrorCodes.BROKER_UNAVAILABLE, `publish to ${exchange || '(default exchange)'}/${routingKey}: the broker did not confirm it (${brokerReason(err)})`));
            } else resolve();
          });
        } catch (err) {
          clearTimeout(timer);
          reject(new BrokerError(ErrorCodes.BROKER_UNAVAILABLE, `publish to ${exchange || '(default exchange)'}/${routingKey}: ${(err as Error).message}`));
        }
      });
    } finally {
      this.pending.delete(pending);
    }
    if (pending.returned !== undefined) {
      throw new BrokerError(ErrorCodes.UNROUTABLE, `No queue is bound for ${exchange || '(default exchange)'}/${routingKey}: the broker returned the message (${pending.returned})`, {
        exchange,
        routingKey,
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.wakeWaiters();
    const model = this.model;
    // Channels first: each close is ordered after that channel's pending frames (acks), the connection's is not.
    for (const ch of [this.publisher, this.admin]) await ch?.close().catch(() => undefined);
    this.model = undefined;
    await model?.close().catch(() => undefined);
  }
}
