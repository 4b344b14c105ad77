import { redisSettings, sqlitePath, type CeleriacApp } from '@celeriac/core/spi';
import { MemoryBeatStore } from './store/memory.js';
import { RedisBeatStore } from './store/redis.js';
import { SqliteBeatStore } from './store/sqlite.js';
import type { BeatStore } from './store/store.js';

/**
 * The store that goes with the app's broker: the same SQLite file, the same
 * Redis, or memory. (RabbitMQ deployments keep beat state in their result
 * backend's Redis or SQLite.)
 */
export async function openBeatStore(app: CeleriacApp, clock?: () => number): Promise<BeatStore> {
  const url = ['sqlite', 'redis', 'rediss', 'redis+sentinel'].includes(app.config.broker.scheme) ? app.config.broker : app.config.backend;
  switch (url.scheme) {
    case 'sqlite':
      return SqliteBeatStore.open(sqlitePath(url), clock);
    case 'redis':
    case 'rediss':
    case 'redis+sentinel':
      return RedisBeatStore.open(redisSettings(url));
    default:
      return new MemoryBeatStore(clock);
  }
}
