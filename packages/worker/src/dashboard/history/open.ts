/** Which history store a `--history` URL names, opened. */
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError, ErrorCodes, redactUrl } from '@celeriac/core/spi';
import type { HistoryStore } from '../model.js';
import { SqliteHistoryStore } from './sqlite-store.js';

/** The history file when none is named, in the directory the dashboard runs from. */
export const DEFAULT_HISTORY_FILE = 'celeriac-dashboard.db';

const ACCEPTED = `a file path, sqlite:///absolute/path.db, sqlite://relative/path.db, or redis://[user:password@]host[:port][/db][?keyPrefix=...] (rediss:// for TLS)`;

/**
 * Open the task history `url` names: undefined → `celeriac-dashboard.db` in `cwd`; a plain path or
 * `sqlite://path` (relative to `cwd`; `sqlite:///abs` absolute) → a SQLite file; `redis://` or
 * `rediss://` → Redis (keys under `celeriac:dash:`, after the URL's `keyPrefix` when it has one).
 *
 * @throws ConfigError `URL_INVALID` for any other scheme, naming the accepted forms.
 * @throws BrokerUnavailableError when the Redis it names cannot be reached.
 */
export async function openHistory(url: string | undefined, cwd: string): Promise<HistoryStore> {
  if (url === undefined || url.trim() === '') return SqliteHistoryStore.open(join(cwd, DEFAULT_HISTORY_FILE));
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  // A one-letter "scheme" is a Windows drive (C:\...), a path.
  if (scheme === undefined || (scheme.length === 1 && !url.startsWith(`${scheme}://`))) return SqliteHistoryStore.open(resolve(cwd, url));
  if (scheme === 'sqlite') {
    const path = decodeURIComponent(url.slice('sqlite://'.length).replace(/[?#].*$/, ''));
    if (!url.startsWith('sqlite://') || !path || path === '/') {
      throw new ConfigError(`history URL ${JSON.stringify(redactUrl(url))} names no file; use ${ACCEPTED}`, { url: redactUrl(url) }, ErrorCodes.URL_INVALID);
    }
    return SqliteHistoryStore.open(isAbsolute(path) ? path : resolve(cwd, path));
  }
  if (scheme === 'redis' || scheme === 'rediss') {
    const { RedisHistoryStore } = await import('./redis-store.js');
    return RedisHistoryStore.open(url);
  }
  throw new ConfigError(`history URL ${JSON.stringify(redactUrl(url))}: unsupported scheme ${JSON.stringify(scheme)}; use ${ACCEPTED}`, { url: redactUrl(url), scheme }, ErrorCodes.URL_INVALID);
}
