/**
 * The SQLite file shared by the embedded broker, result backend and beat store: the schema, how
 * the file is opened (WAL, busy timeout), the `sqlite://` URL parser, and the change hints that
 * shorten polls across processes.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError, ErrorCodes } from '../../errors.js';
import { UrlOptions, type ParsedUrl } from '../../util/url.js';

export type Db = BetterSqlite3.Database;

/** Default path of the embedded broker and backend, relative to the working directory. */
export const DEFAULT_SQLITE_URL = 'sqlite://./.celeriac/celeriac.db';

const SCHEMA_VERSION = 1;

/**
 * One schema for the embedded broker, backend and beat. Times are epoch ms.
 * A message is ready when it has no live lease and is due; a claim sets
 * `owner` + `lease_until`, so a dead owner's messages come back on their own.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL,
  envelope TEXT NOT NULL,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  owner TEXT,
  lease_until INTEGER
);
CREATE INDEX IF NOT EXISTS messages_claim ON messages (queue, priority DESC, id);
CREATE INDEX IF NOT EXISTS messages_owner ON messages (owner);
CREATE TABLE IF NOT EXISTS dead_letters (id TEXT PRIMARY KEY, record TEXT NOT NULL, failed_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (failed_at, id);
CREATE TABLE IF NOT EXISTS broadcasts (seq INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results (task_id TEXT PRIMARY KEY, status TEXT NOT NULL, meta TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at);
CREATE TABLE IF NOT EXISTS revoked (task_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER);
CREATE TABLE IF NOT EXISTS failed_tasks (id TEXT PRIMARY KEY, ended_at INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS failed_tasks_by_time ON failed_tasks (ended_at, id);
`;

/** Query options a `sqlite://` URL accepts (none yet: the file path is all it says). */
export const SQLITE_URL_OPTIONS: readonly string[] = Object.freeze([]);

/** Settings read from a `sqlite://` URL. */
export interface SqliteSettings {
  /** The database file, absolute. */
  readonly path: string;
}

/** The pure parser of a `sqlite://` URL: its file path, and no query option it does not know. */
export function sqliteSettings(url: ParsedUrl): SqliteSettings {
  new UrlOptions(url, SQLITE_URL_OPTIONS);
  return { path: sqlitePath(url) };
}

/** The file path a `sqlite://` URL names: `sqlite://./x.db` and `sqlite://x.db` are relative, `sqlite:///abs/x.db` absolute. */
export function sqlitePath(url: ParsedUrl): string {
  const path = decodeURIComponent(url.url.host + url.url.pathname);
  if (!path || path === '/') {
    throw new ConfigError(`sqlite URL ${JSON.stringify(url.redacted)} names no file; use sqlite://./path/to.db`, { url: url.redacted }, ErrorCodes.URL_INVALID);
  }
  return resolve(path);
}

/**
 * Open (and create on first use) the database: WAL so readers never block the
 * writer, a busy timeout so concurrent processes wait rather than fail, and
 * NORMAL sync (a committed message survives a process crash; WAL keeps the file consistent).
 */
export async function openDb(path: string): Promise<Db> {
  const { default: Database } = await import('better-sqlite3');
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  db.pragma('synchronous = NORMAL');
  if ((db.pragma('user_version', { simple: true }) as number) < SCHEMA_VERSION) {
    db.exec(`BEGIN IMMEDIATE; ${SCHEMA} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
  }
  return db;
}

/**
 * Change hints for a database file, shared by every handle in this process:
 * local writes call `notify()`, and writes by other processes are seen through
 * a watch on the WAL file's directory. A hint only shortens a poll; polling
 * with a backoff stays the source of truth.
 */
export class ChangeHints extends EventEmitter {
  private static readonly byPath = new Map<string, ChangeHints>();
  private watcher: FSWatcher | undefined;
  private refs = 0;

  static acquire(path: string): ChangeHints {
    let hints = ChangeHints.byPath.get(path);
    if (!hints) {
      hints = new ChangeHints();
      ChangeHints.byPath.set(path, hints);
      const wal = `${basename(path)}-wal`;
      try {
        hints.watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
          if (file === wal) hints!.emit('change');
        });
        hints.watcher.on('error', () => undefined);
      } catch {
        // No inotify (or similar): polling alone still works.
      }
    }
    hints.setMaxListeners(0);
    hints.refs++;
    return hints;
  }

  static release(path: string): void {
    const hints = ChangeHints.byPath.get(path);
    if (hints && --hints.refs <= 0) {
      hints.watcher?.close();
      ChangeHints.byPath.delete(path);
    }
  }

  notify(): void {
    this.emit('change');
  }
}
