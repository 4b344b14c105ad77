import type { ParsedUrl } from '../util/url.js';
import type { Transport } from './transport.js';
import type { ResultBackend } from '../backend/backend.js';
import { MemoryTransport } from './memory/memory-transport.js';
import { MemoryBackend } from '../backend/memory/memory-backend.js';
import { sqlitePath } from './sqlite/db.js';

/** What a factory gets besides the URL: the app settings transports act on. */
export interface FactoryContext {
  /** ms a claimed message stays invisible without renewal (transports with `visibilityTimeout`). */
  readonly visibilityTimeout: number;
}

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
});

/** `memory://` and `memory://name` name an in-process broker/store; the empty name is `default`. */
function memoryName(url: ParsedUrl): string {
  return url.url.host || url.url.pathname.replace(/^\/+/, '') || 'default';
}
