/**
 * The AMQP connection every AMQP user shares the code of (the transport, the `rpc://` backend):
 * one connection that comes back after a drop, a confirm channel for publishing, an admin channel
 * for declarations, and the errors for a broker that is away, blocked or closed.
 */
import { readFileSync } from 'node:fs';
import type { Channel, ChannelModel, Options } from 'amqplib';
import { BrokerError, BrokerUnavailableError, ConfigError, ErrorCodes, TransportClosedError } from '../../errors.js';
import type { AmqpSettings } from './settings.js';
import { ConfirmPublisher } from './confirms.js';
import { watchHeartbeat } from './heartbeat.js';

export type { AmqpSettings } from './settings.js';

/** The text RabbitMQ gave for a channel error, without amqplib's framing. */
export function brokerReason(err: unknown): string {
  const msg = (err as Error)?.message ?? String(err);
  return /with message "([^"]*)"/.exec(msg)?.[1] ?? msg;
}

/** amqplib's socket options, with the `?ca=` file read (a file that cannot be read is a configuration error). */
function socketOptions(settings: AmqpSettings): Record<string, unknown> {
  if (!settings.caFile) return settings.socket;
  try {
    return { ...settings.socket, ca: [readFileSync(settings.caFile)] };
  } catch (err) {
    throw new ConfigError(`${settings.redacted}: cannot read the CA file ${JSON.stringify(settings.caFile)}: ${(err as Error).message}`, { url: settings.redacted }, ErrorCodes.URL_INVALID, { cause: err });
  }
}

/** Work to do on every connection (declare and consume, listen): see {@link AmqpSession.onConnect}. */
export type Hook = (model: ChannelModel) => Promise<void>;

/**
 * One AMQP connection that comes back: after a drop or a broker restart it
 * reconnects with backoff and runs every registered `onConnect` hook (consumers
 * re-declare and re-consume). Publishes go through a confirm channel and
 * resolve only on the broker's ack; while disconnected or under a resource alarm
 * they wait up to `publishTimeoutMs`, then fail with a named {@link BrokerError}.
 */
export class AmqpSession {
  private model: ChannelModel | undefined;
  private readonly confirms = new ConfirmPublisher(this);
  private admin: Channel | undefined;
  private readonly hooks = new Set<Hook>();
  private readonly waiters = new Set<() => void>();
  /** Queues and exchanges declared on the current connection (declaring again is a wasted round trip). */
  readonly declared = new Set<string>();
  /** Reason of the current resource alarm (`connection.blocked`), if any. */
  blocked: string | undefined;
  /** Why the current connection is failing (its last 'error'), for the log line when it closes. */
  private lastError: string | undefined;
  /** Set when the heartbeat watchdog (heartbeat.ts) dropped the connection (why), for its log line. */
  private heartbeatMissed: string | undefined;
  /** Pending retries of hooks (cleared on close). */
  private readonly retries = new Set<NodeJS.Timeout>();
  private closed = false;
  private generation = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly settings: AmqpSettings,
    /** Where the session's warnings go (process warnings by default). */
    readonly log: (message: string) => void,
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
      model = await connect(this.settings.connect, socketOptions(this.settings));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new BrokerUnavailableError(`Cannot reach the AMQP broker at ${this.settings.redacted}: ${(err as Error).message}`, { url: this.settings.redacted }, { cause: err });
    }
    // 'close' follows; reconnecting is decided there. The reason is kept for the log line (a missed heartbeat).
    model.on('error', (err: Error) => void (this.lastError = err?.message ?? String(err)));
    model.on('blocked', (reason: string) => {
      this.blocked = reason || 'resource alarm';
      this.log(`AMQP broker blocked publishing: ${this.blocked}`);
    });
    model.on('unblocked', () => {
      this.blocked = undefined;
      this.wakeWaiters();
    });
    model.on('close', () => this.onClose(model));
    watchHeartbeat(model, (why) => (this.heartbeatMissed = why));
    this.model = model;
    this.generation++;
    this.declared.clear();
    this.confirms.reset();
    this.admin = undefined;
    this.lastError = undefined;
    // Each hook (a consumer, a listener) runs until it succeeds on this connection: a re-attach that fails
    // (a declaration refused, a channel error) is retried with backoff, never left failed.
    for (const hook of this.hooks) await this.runHook(hook, model, 0);
    this.wakeWaiters();
  }

  private onClose(model: ChannelModel): void {
    if (this.model !== model) return;
    this.model = undefined;
    this.confirms.reset();
    this.admin = undefined;
    this.blocked = undefined;
    if (this.closed) return;
    const why = this.heartbeatMissed ? `Heartbeat timeout: ${this.heartbeatMissed}` : (this.lastError ?? 'closed by the broker or the network');
    this.heartbeatMissed = undefined;
    // HEARTBEAT_MISSED names the half-open case (a partition): nothing arrived for two heartbeat intervals.
    const tag = /heartbeat/i.test(why) ? ' [HEARTBEAT_MISSED]' : '';
    this.log(`AMQP connection to ${this.settings.redacted} lost${tag} (${why}); reconnecting`);
    this.scheduleReconnect(100);
  }

  private scheduleReconnect(delay: number): void {
    this.reconnectTimer = setTimeout(() => {
      this.connect().catch(() => this.scheduleReconnect(Math.min(delay * 2, 5000)));
    }, delay);
  }

  /**
   * Run `hook` on `model`; on failure try again with backoff (200 ms doubling to 5 s) for as long as
   * `model` is the current connection, the hook is registered and the session open. A new connection
   * runs every hook afresh, so the loop for an old one just ends. A hook must leave nothing behind
   * when it throws (close the channel it opened), since it runs again.
   */
  private async runHook(hook: Hook, model: ChannelModel, attempt: number): Promise<void> {
    try {
      await hook(model);
    } catch (err) {
      if (this.closed || this.model !== model || !this.hooks.has(hook)) return;
      const delay = Math.min(200 * 2 ** attempt, 5000);
      // Once, then every ~10th attempt: an outage of a queue must not write a line a second.
      if (attempt === 0 || attempt % 10 === 0) this.log(`AMQP recovery step failed (attempt ${attempt + 1}), retrying every ${delay} ms at most: ${brokerReason(err)}`);
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        void this.runHook(hook, model, attempt + 1);
      }, delay);
      this.retries.add(timer);
    }
  }

  /**
   * Run `hook` again on the current connection, with the same retries (a consumer whose channel the
   * broker closed). After a short pause, so that a channel closed by a dropping connection leaves the
   * work to the reconnect, which runs every hook itself.
   */
  rerun(hook: Hook): void {
    const model = this.model;
    if (!model || this.closed) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (this.model === model && this.hooks.has(hook)) void this.runHook(hook, model, 0);
    }, 200);
    this.retries.add(timer);
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Whether a connection is up now (blocked or not). */
  get connected(): boolean {
    return this.model !== undefined;
  }

  /**
   * Run `hook` now (when connected) and after every reconnect, retried until it succeeds on each
   * connection. A first run that fails rejects (and registers nothing): the caller learns at once
   * (unless `retryFirst`).
   * Returns its remover.
   */
  async onConnect(hook: Hook, options: { retryFirst?: boolean } = {}): Promise<() => void> {
    this.hooks.add(hook);
    // `retryFirst`: the first run is retried like the later ones, and not awaited (a reply listener
    // must not make its caller wait on a broker that does not answer).
    if (options.retryFirst) {
      if (this.model) void this.runHook(hook, this.model, 0);
      return () => this.hooks.delete(hook);
    }
    try {
      if (this.model) await hook(this.model);
    } catch (err) {
      this.hooks.delete(hook);
      throw err;
    }
    return () => this.hooks.delete(hook);
  }

  /**
   * Wait for a connection that is up and not blocked, until `deadline` (default: the publish
   * timeout from now), then fail by name: BROKER_BLOCKED under an alarm, else BROKER_UNAVAILABLE.
   */
  async ready(what: string, deadline = Date.now() + this.settings.publishTimeoutMs): Promise<ChannelModel> {
    while (!this.model || this.blocked) {
      if (this.closed) throw new TransportClosedError(`${what}: the AMQP transport`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw this.blocked
          ? new BrokerError(ErrorCodes.BROKER_BLOCKED, `${what}: the broker has blocked publishing (${this.blocked}) for more than ${this.settings.publishTimeoutMs} ms`)
          : new BrokerUnavailableError(`${what}: no connection to the AMQP broker at ${this.settings.redacted} for ${this.settings.publishTimeoutMs} ms`, { url: this.settings.redacted });
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

  /**
   * A channel opened before `deadline`, or a named error. Opening one is a round trip a blocked
   * connection or a partition never answers; a channel that opens after we gave up is closed.
   */
  async open<T extends Channel>(what: string, create: (model: ChannelModel) => Promise<T>, deadline: number): Promise<T> {
    const model = await this.ready(what, deadline);
    let late = false;
    const opening = create(model);
    opening.then(
      (ch) => void (late && ch.close().catch(() => undefined)),
      () => undefined,
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        opening,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            late = true;
            reject(this.deadlineError(what));
          }, Math.max(0, deadline - Date.now()));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  deadlineError(what: string): BrokerError {
    return this.blocked
      ? new BrokerError(ErrorCodes.BROKER_BLOCKED, `${what}: the broker has blocked publishing (${this.blocked}) for more than ${this.settings.publishTimeoutMs} ms`)
      : new BrokerUnavailableError(`${what}: the AMQP broker at ${this.settings.redacted} did not answer within ${this.settings.publishTimeoutMs} ms`, { url: this.settings.redacted });
  }

  /** Keep `ch` in `slot` until it closes; its errors surface as that close, never as a thrown 'error' event. */
  private hold(ch: Channel): Channel {
    ch.on('error', () => undefined);
    ch.on('close', () => {
      if (this.admin === ch) this.admin = undefined;
    });
    this.admin = ch;
    return ch;
  }

  /**
   * A channel for declarations and queries. A failed declaration closes only this
   * channel (the next call opens another), never the publisher or a consumer.
   */
  async adminChannel(): Promise<Channel> {
    if (this.admin) return this.admin;
    // Shared while it opens, like the publisher's: callers that arrive together use one channel.
    this.openingAdmin ??= this.open('declare', (m) => m.createChannel(), Date.now() + this.settings.publishTimeoutMs)
      .then((ch) => this.hold(ch))
      .finally(() => (this.openingAdmin = undefined));
    return this.openingAdmin;
  }

  private openingAdmin: Promise<Channel> | undefined;

  /**
   * Publish and resolve once the broker confirms (see {@link ConfirmPublisher.publish}): at most
   * `publishTimeoutMs` in all, UNROUTABLE for a `mandatory` message no queue takes, BROKER_BLOCKED or
   * BROKER_UNAVAILABLE (outcome unknown: send again with the same task id) otherwise.
   */
  publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    return this.confirms.publish(exchange, routingKey, content, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    this.wakeWaiters();
    const model = this.model;
    // Channels first: each close is ordered after that channel's pending frames (acks), the connection's is not.
    for (const ch of [this.confirms.channel, this.admin]) await ch?.close().catch(() => undefined);
    this.model = undefined;
    await model?.close().catch(() => undefined);
  }
}
