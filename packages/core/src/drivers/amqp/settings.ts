/**
 * The AMQP URL, read once: `amqpSettings` is the pure parser of `amqp://` and `amqps://` URLs (no
 * I/O, amqplib not loaded), used by `createApp` to refuse a bad URL at start and by the AMQP
 * transport and the `rpc://` backend to connect.
 */
import type { Options } from 'amqplib';
import { UrlOptions, type ParsedUrl } from '../../util/url.js';

/** Settings read from an `amqp://` / `amqps://` URL. */
export interface AmqpSettings {
  readonly connect: Options.Connect;
  readonly socket: Record<string, unknown>;
  /** `?ca=`: file of the CA certificates an `amqps://` broker is checked against (read when connecting). */
  readonly caFile?: string;
  /** How long a publish waits for a connection, an alarm to clear, or a confirm, before failing. */
  readonly publishTimeoutMs: number;
  /**
   * The broker's `consumer_timeout` (`?consumerTimeout=`, ms; RabbitMQ's default, 30 min, when not
   * given): a delivery held for half of it is moved off its channel (ack-then-track, see
   * transport/amqp/held.ts) so the broker never closes the channel under a long task.
   */
  readonly consumerTimeoutMs: number;
  readonly redacted: string;
}

/** Query options each AMQP scheme accepts. */
export const AMQP_URL_OPTIONS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  amqp: ['heartbeat', 'connectTimeout', 'publishTimeout', 'consumerTimeout'],
  amqps: ['heartbeat', 'connectTimeout', 'publishTimeout', 'consumerTimeout', 'ca', 'tlsInsecure'],
});

/**
 * `amqp://[user:password@]host[:port][/vhost][?heartbeat=10&publishTimeout=10000&connectTimeout=5000&consumerTimeout=1800000]`.
 * `amqps://` is TLS with certificate verification on, against the system CAs or `?ca=<file>`
 * (`?tlsInsecure=true` turns verification off, for tests only). Heartbeats default to 10 s,
 * so a dead peer is noticed within ~20 s even when no traffic flows.
 */
export function amqpSettings(url: ParsedUrl): AmqpSettings {
  const u = url.url;
  const tls = url.scheme === 'amqps';
  const query = new UrlOptions(url, AMQP_URL_OPTIONS[url.scheme] ?? AMQP_URL_OPTIONS.amqp!);
  const vhost = decodeURIComponent(u.pathname.replace(/^\//, '')) || '/';
  const caFile = tls ? query.string('ca') : undefined;
  return {
    connect: {
      protocol: tls ? 'amqps' : 'amqp',
      hostname: u.hostname || '127.0.0.1',
      port: u.port ? Number(u.port) : tls ? 5671 : 5672,
      username: u.username ? decodeURIComponent(u.username) : 'guest',
      password: u.password ? decodeURIComponent(u.password) : 'guest',
      vhost,
      heartbeat: query.int('heartbeat', 10, { unit: 'seconds' }),
      frameMax: 131072,
    },
    socket: {
      timeout: query.int('connectTimeout', 5000, { min: 1, unit: 'ms' }),
      ...(tls ? { servername: u.hostname, rejectUnauthorized: !query.bool('tlsInsecure') } : {}),
    },
    ...(caFile ? { caFile } : {}),
    publishTimeoutMs: query.int('publishTimeout', 10_000, { min: 1, unit: 'ms' }),
    consumerTimeoutMs: query.int('consumerTimeout', 1_800_000, { min: 2000, unit: 'ms' }),
    redacted: url.redacted,
  };
}
