/**
 * URL scheme → implementation, for transports and result backends; and, per scheme, the pure
 * parser of its URL's settings (each driver's), which `createApp` runs on the broker and backend
 * URLs so a bad query option fails at start. Factories use the settings parsed then (no second
 * parse), and load a scheme's client library only when it is used.
 */
import { UrlOptions, type ParsedUrl } from '../util/url.js';
import type { Transport } from './transport.js';
import type { ResultBackend } from '../backend/backend.js';
import type { QueueDeclaration } from './amqp/queue-declaration.js';
import { MemoryTransport } from './memory/memory-transport.js';
import { MemoryBackend } from '../backend/memory/memory-backend.js';
import { sqliteSettings, type SqliteSettings } from '../drivers/sqlite/db.js';
import { redisSettings, type RedisSettings } from '../drivers/redis/settings.js';
import { amqpSettings, type AmqpSettings } from '../drivers/amqp/settings.js';

/** What a factory gets besides the URL: the app settings transports act on. */
export interface FactoryContext {
  /** ms a claimed message stays invisible without renewal (transports with `visibilityTimeout`). */
  readonly visibilityTimeout: number;
  /** AMQP queue declarations by name; queues not listed are declared as Celery declares them. */
  readonly queues: Readonly<Record<string, Readonly<QueueDeclaration>>>;
  readonly defaultQueue: string;
  /** The broker URL (`rpc://` replies travel over the broker). */
  readonly broker: ParsedUrl;
  /** The app's client id: its `reply_to`, and the `rpc://` reply queue's name. */
  readonly oid: string;
}

/** `memory://` and `memory://name` name an in-process broker/store; the empty name is `default`. */
function memorySettings(url: ParsedUrl): { readonly name: string } {
  void new UrlOptions(url, []);
  return { name: url.url.host || url.url.pathname.replace(/^\/+/, '') || 'default' };
}

/** `rpc://` says nothing itself (replies use the broker's connection): it takes no options. */
function rpcSettings(url: ParsedUrl): Record<string, never> {
  void new UrlOptions(url, []);
  return {};
}

/**
 * The settings parser of each scheme (transport and backend schemes alike): pure, throwing a
 * `ConfigError` `URL_INVALID` that names the bad option and lists the accepted ones.
 */
export const URL_SETTINGS: Readonly<Record<string, (url: ParsedUrl) => unknown>> = Object.freeze({
  memory: memorySettings,
  sqlite: sqliteSettings,
  redis: redisSettings,
  rediss: redisSettings,
  'redis+sentinel': redisSettings,
  amqp: amqpSettings,
  amqps: amqpSettings,
  rpc: rpcSettings,
});

/** Settings already parsed, by URL (the frozen `ParsedUrl` of a resolved config). */
const parsed = new WeakMap<ParsedUrl, unknown>();

/** Parse (once per URL) and check a URL's settings with its scheme's parser; throws on a bad option. */
export function urlSettings(url: ParsedUrl): unknown {
  return settingsOf(url, URL_SETTINGS[url.scheme] ?? (() => undefined));
}

function settingsOf<S>(url: ParsedUrl, parse: (url: ParsedUrl) => S): S {
  if (!parsed.has(url)) parsed.set(url, parse(url));
  return parsed.get(url) as S;
}

const amqpTransport = async (url: ParsedUrl, ctx: FactoryContext): Promise<Transport> => {
  const settings = settingsOf<AmqpSettings>(url, amqpSettings);
  const { AmqpTransport } = await import('./amqp/amqp-transport.js');
  return AmqpTransport.open(settings, { queues: ctx.queues });
};

const redisTransport = async (url: ParsedUrl, ctx: FactoryContext): Promise<Transport> => {
  const settings = settingsOf<RedisSettings>(url, redisSettings);
  const { RedisTransport } = await import('./redis/redis-transport.js');
  return RedisTransport.open(settings, { visibilityTimeout: ctx.visibilityTimeout });
};
const redisBackend = async (url: ParsedUrl): Promise<ResultBackend> => {
  const settings = settingsOf<RedisSettings>(url, redisSettings);
  const { RedisBackend } = await import('../backend/redis/redis-backend.js');
  return RedisBackend.open(settings);
};

/** URL scheme → transport. A scheme is listed here only once it works end to end. */
export const TRANSPORT_FACTORIES: Readonly<Record<string, (url: ParsedUrl, ctx: FactoryContext) => Promise<Transport>>> = Object.freeze({
  memory: async (url) => new MemoryTransport(settingsOf(url, memorySettings).name),
  sqlite: async (url, ctx) => {
    const { path } = settingsOf<SqliteSettings>(url, sqliteSettings);
    const { SqliteTransport } = await import('./sqlite/sqlite-transport.js');
    return SqliteTransport.open(path, { visibilityTimeout: ctx.visibilityTimeout });
  },
  redis: redisTransport,
  rediss: redisTransport,
  'redis+sentinel': redisTransport,
  amqp: amqpTransport,
  amqps: amqpTransport,
});

/** URL scheme → result backend. */
export const BACKEND_FACTORIES: Readonly<Record<string, (url: ParsedUrl, ctx: FactoryContext) => Promise<ResultBackend>>> = Object.freeze({
  memory: async (url) => new MemoryBackend(settingsOf(url, memorySettings).name),
  sqlite: async (url) => {
    const { path } = settingsOf<SqliteSettings>(url, sqliteSettings);
    const { SqliteBackend } = await import('../backend/sqlite/sqlite-backend.js');
    return SqliteBackend.open(path);
  },
  redis: redisBackend,
  rediss: redisBackend,
  'redis+sentinel': redisBackend,
  // The config refuses rpc:// unless the broker is AMQP.
  rpc: async (_url, ctx) => {
    const settings = settingsOf<AmqpSettings>(ctx.broker, amqpSettings);
    const { RpcBackend } = await import('../backend/rpc/rpc-backend.js');
    return RpcBackend.open(settings, ctx.oid);
  },
});

/** Backends whose replies travel to the sending client only: the app lets them prepare before each send. */
export const REPLY_BACKENDS: ReadonlySet<string> = new Set(['rpc']);
