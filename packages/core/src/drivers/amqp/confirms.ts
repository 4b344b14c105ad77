/**
 * Publishing through a confirm channel, for {@link AmqpSession}: one channel shared by every
 * publish, returns matched to their publish, and one deadline (`publishTimeoutMs`) over the whole
 * call — the wait for a connection or for an alarm to clear, opening the channel, the confirm.
 */
import type { Channel, ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import { BrokerError, BrokerUnavailableError, ErrorCodes } from '../../errors.js';
import type { AmqpSettings } from './settings.js';

/** What the publisher needs of its session. */
export interface ConfirmHost {
  readonly settings: AmqpSettings;
  /** Reason of the current resource alarm, if any. */
  readonly blocked: string | undefined;
  ready(what: string, deadline: number): Promise<ChannelModel>;
  open<T extends Channel>(what: string, create: (model: ChannelModel) => Promise<T>, deadline: number): Promise<T>;
}

interface Pending {
  readonly exchange: string;
  readonly routingKey: string;
  readonly correlationId: unknown;
  returned: string | undefined;
}

/** The text RabbitMQ gave for a channel error, without amqplib's framing. */
const reason = (err: unknown): string => {
  const msg = (err as Error)?.message ?? String(err);
  return /with message "([^"]*)"/.exec(msg)?.[1] ?? msg;
};

/** The session's confirm channel and the publishes waiting on it. */
export class ConfirmPublisher {
  private current: ConfirmChannel | undefined;
  /** The channel being opened, shared: publishes that arrive together must not each open one (out of order, leaked). */
  private opening: Promise<ConfirmChannel> | undefined;
  private readonly pending = new Set<Pending>();

  constructor(private readonly host: ConfirmHost) {}

  /** The open confirm channel, if any (closed first when the session closes: it is ordered after its frames). */
  get channel(): ConfirmChannel | undefined {
    return this.current;
  }

  /** Forget the channel (a new connection, or the old one lost). */
  reset(): void {
    this.current = undefined;
  }

  private async channelBy(deadline: number): Promise<ConfirmChannel> {
    if (this.current) return this.current;
    this.opening ??= this.openChannel(deadline).finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async openChannel(deadline: number): Promise<ConfirmChannel> {
    const ch = await this.host.open('publish', (m) => m.createConfirmChannel(), deadline);
    ch.on('error', () => undefined); // Surfaces as the close below, never as a thrown 'error' event.
    ch.on('close', () => {
      if (this.current === ch) this.current = undefined;
    });
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
    this.current = ch;
    return ch;
  }

  /**
   * Publish and resolve once the broker confirms. `mandatory` messages that no
   * queue takes reject with UNROUTABLE; a connection lost before the confirm
   * rejects with BROKER_UNAVAILABLE (the outcome is unknown: send again with the
   * same task id). The whole call — waiting for a connection or for an alarm to
   * clear, opening the channel, the confirm — takes at most `publishTimeoutMs`.
   */
  async publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    const { publishTimeoutMs } = this.host.settings;
    const deadline = Date.now() + publishTimeoutMs;
    const where = `publish to ${exchange || '(default exchange)'}/${routingKey}`;
    // Nothing is written while disconnected or blocked: it waits here, up to the deadline, then fails by name.
    await this.host.ready('publish', deadline);
    const ch = await this.channelBy(deadline);
    const pending: Pending = { exchange, routingKey, correlationId: options.correlationId, returned: undefined };
    this.pending.add(pending);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const blocked = this.host.blocked;
          if (blocked) {
            // Written, then the broker blocked us: it holds the message and may confirm it once the alarm
            // clears. The caller is told so by name at its deadline (the channel stays: its confirms still come).
            return reject(
              new BrokerError(ErrorCodes.BROKER_BLOCKED, `${where}: written, but the broker blocked publishing (${blocked}) before confirming it within ${publishTimeoutMs} ms; the outcome is unknown, send again with the same task id`, {
                exchange,
                routingKey,
                outcome: 'unknown',
              }),
            );
          }
          // A confirm that never comes (e.g. a queue that is not accepting) must not stall every later publish
          // behind it: retire this channel; its other unconfirmed publishes fail as unknown too, and are retried.
          if (this.current === ch) {
            this.current = undefined;
            ch.close().catch(() => undefined);
          }
          reject(new BrokerUnavailableError(`${where}: not confirmed by the broker within ${publishTimeoutMs} ms; the outcome is unknown, send again with the same task id`));
        }, Math.max(0, deadline - Date.now()));
        try {
          ch.publish(exchange, routingKey, content, options, (err) => {
            clearTimeout(timer);
            if (err) reject(new BrokerUnavailableError(`${where}: the broker did not confirm it (${reason(err)})`, {}, { cause: err }));
            else resolve();
          });
        } catch (err) {
          clearTimeout(timer);
          reject(new BrokerUnavailableError(`${where}: ${(err as Error).message}`, {}, { cause: err }));
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
}
