import type { ParsedUrl } from '../util/url.js';
import type { QueueDeclaration } from '../app/config.js';
import type { Transport } from './transport.js';
import type { ResultBackend } from '../backend/backend.js';
import { MemoryTransport } from './memory/memory-transport.js';
import { MemoryBackend } from '../backend/memory/memory-backend.js';
import { sqlitePath } from './sqlite/db.js';

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

const amqpTransport = async (url: ParsedUrl, ctx: FactoryContext): Promise<Transport> => {
  const [{ AmqpTransport }, { amqpSettings }] = await Promise.all([import('./amqp/amqp-transport.js'), import('./amqp/connection.js')]);
  return AmqpTransport.open(amqpSettings(url), { queues: ctx.queues });
};

const redisTransport = async (url: ParsedUrl, ctx: FactoryContext): Promise<Transport> => {
  const [{ RedisTransport }, { redisSettings }] = await Promise.all([import('./redis/redis-transport.js'), import('./redis/connection.js')]);
  return RedisTransport.open(redisSettings(url), { visibilityTimeout: ctx.visibilityTimeout });
};
const redisBackend = async (url: ParsedUrl): Promise<ResultBackend> => {
  const [{ RedisBackend }, { redisSettings }] = await Promise.all([import('../backend/redis/redis-backend.js'), import('./redis/connection.js')]);
  return RedisBackend.open(redisSettings(url));
};

/**
 * URL scheme → implementation. Factories are async so a transport's client
 * library (better-sqlite3, ioredis, amqplib) is loaded only when its scheme is
 * used. A scheme is listed here only once it works end to end.
 */
export const TRANSPORT_FACTORIES: Readonly<Record<string, (url: ParsedUrl, ctx: FactoryContext) => Promise<Transport>>> = Object.freeze({
  memory: async (url) => new MemoryTransport(memoryName(url)),
  sqlite: async (url, ctx) => {
    const { SqliteTransport } = await import('./sqlite/sqlite-transport.js');
    return SqliteTransport.open(sqlitePath(url), { visibilityTimeout: ctx.visibilityTimeout });
  },
  redis: redisTransport,
  rediss: redisTransport,
  'redis+sentinel': redisTransport,
  amqp: amqpTransport,
  amqps: amqpTransport,
});

export const BACKEND_FACTORIES: Readonly<Record<string, (url: ParsedUrl, ctx: FactoryContext) => Promise<ResultBackend>>> = Object.freeze({
  memory: async (url) => new MemoryBackend(memoryName(url)),
  sqlite: async (url) => {
    const { SqliteBackend } = await import('../backend/sqlite/sqlite-backend.js');
    return SqliteBackend.open(sqlitePath(url));
  },
  redis: redisBackend,
  rediss: redisBackend,
  'redis+sentinel': redisBackend,
  // The config refuses rpc:// unless the broker is AMQP.
  rpc: async (_url, ctx) => {
    const [{ RpcBackend }, { amqpSettings }] = await Promise.all([import('../backend/rpc/rpc-backend.js'), import('./amqp/connection.js')]);
    return RpcBackend.open(amqpSettings(ctx.broker), ctx.oid);
  },
});

/** Backends whose replies travel to the sending client only: the app lets them prepare before each send. */
export const REPLY_BACKENDS: ReadonlySet<string> = new Set(['rpc']);

/** `memory://` and `memory://name` name an in-process broker/store; the empty name is `default`. */
function memoryName(url: ParsedUrl): string {
  return url.url.host || url.url.pathname.replace(/^\/+/, '') || 'default';
}
