import { BEAT_STORE_SCHEMES, CapabilityError, parseUrl, redisSettings, sqlitePath, type CeleriacApp, type ParsedUrl } from '@celeriac/core/spi';
import { MemoryBeatStore } from './store/memory.js';
import { RedisBeatStore } from './store/redis.js';
import { SqliteBeatStore } from './store/sqlite.js';
import type { BeatStore } from './store/store.js';

export interface OpenBeatStoreOptions {
  /** The store's URL (`sqlite:///path` or `redis://…`), over the app's `beatStore`; the CLI's `--store`. */
  readonly store?: string;
  /** Read the time from here (tests of clock skew); a Redis store uses Redis TIME instead. */
  readonly clock?: () => number;
}

/**
 * The store beat keeps its leader lock and last-run times in: the app's
 * `beatStore` (or `options.store`); else the broker when it is SQLite or
 * Redis; else the result backend when it is. An in-process `memory://` broker
 * gets a memory store (it lives and dies with its process anyway). Anything
 * else — RabbitMQ with `rpc://` results — has no shared durable place, and is
 * refused: a memory store there forgets every last run on restart and lets
 * two beats each send every slot.
 */
export async function openBeatStore(app: CeleriacApp, options: OpenBeatStoreOptions | (() => number) = {}): Promise<BeatStore> {
  const { store, clock } = typeof options === 'function' ? { store: undefined, clock: options } : options;
  const url = store !== undefined ? parseUrl('--store', store, BEAT_STORE_SCHEMES) : pick(app);
  switch (url?.scheme) {
    case 'sqlite':
      return SqliteBeatStore.open(sqlitePath(url), clock);
    case 'redis':
    case 'rediss':
    case 'redis+sentinel':
      return RedisBeatStore.open(redisSettings(url));
    case 'memory':
      return new MemoryBeatStore(clock);
    default:
      throw new CapabilityError(
        `beat needs a durable store shared by every beat for its leader lock and last-run times, and neither the broker (${app.config.broker.redacted}) nor the result backend (${app.config.backend.redacted}) is one; ` +
          'set the app\'s beatStore (or CELERIAC_BEAT_STORE, or `celeriac beat --store`) to sqlite:///path/beat.db (beats on one machine) or redis://host/0 (beats anywhere), or use a Redis or SQLite result backend',
        { broker: app.config.broker.redacted, backend: app.config.backend.redacted },
      );
  }
}

function pick(app: CeleriacApp): ParsedUrl | undefined {
  const { beatStore, broker, backend } = app.config;
  if (beatStore) return beatStore;
  if (BEAT_STORE_SCHEMES.includes(broker.scheme) || broker.scheme === 'memory') return broker;
  if (BEAT_STORE_SCHEMES.includes(backend.scheme)) return backend;
  return undefined;
}
