/**
 * The task history in one SQLite file (the default: `celeriac-dashboard.db` where the dashboard
 * runs). better-sqlite3 is synchronous, so every method runs whole before another starts: each is
 * atomic, and a batch of events is one transaction.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { CeleryEvent } from '@celeriac/core/spi';
import { FINAL_STATES, type BackendRecord, type HistoryStore, type RetentionPolicy, type TaskDetail, type TaskLogLine, type TaskPage, type TaskQuery, type TaskRecord, type TaskRef, type TaskSortKey, type TaskState, type ThroughputPoint, type TimelineEntry } from '../model.js';
import { backendToPatch, eventToPatch, MAX_LOGS, MAX_TIMELINE, mergeTask, type StoredTask, type TaskPatch } from './ingest.js';
import { bucketCount, MAX_GROUP, MAX_CHILDREN } from './shared.js';

/** 2: the text index (tasks_text), filled from the tasks of a version-1 file. */
const SCHEMA_VERSION = 2;

/** Column of each record field (the rest of TaskRecord's fields map camelCase → snake_case). */
const COLUMNS = {
  id: 'id', name: 'name', state: 'state', args: 'args', kwargs: 'kwargs', result: 'result', exception: 'exception', traceback: 'traceback', worker: 'worker', queue: 'queue', retries: 'retries',
  sentAt: 'sent_at', receivedAt: 'received_at', startedAt: 'started_at', endedAt: 'ended_at', runtime: 'runtime', rootId: 'root_id', parentId: 'parent_id', groupId: 'group_id', eta: 'eta', expires: 'expires', updatedAt: 'updated_at', stateAt: 'state_at',
} as const satisfies Record<keyof StoredTask, string>;

const SORT_COLUMN: Readonly<Record<TaskSortKey, string>> = { updatedAt: 'updated_at', sentAt: 'sent_at', receivedAt: 'received_at', startedAt: 'started_at', endedAt: 'ended_at', name: 'name', state: 'state', runtime: 'runtime', worker: 'worker', queue: 'queue' };

/**
 * Why these indexes: the list filters by one of state / name / worker / queue and sorts by
 * updatedAt most of the time, so each filter column leads an index with updated_at second; every
 * other sort key has (key, updated_at), so `ORDER BY key, updated_at, rowid` (the stable order
 * used for every sort) walks an index instead of sorting 100,000 rows. `final` serves the backend
 * poll of unfinished tasks, parent_id / group_id the detail page's relations.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, name TEXT, state TEXT NOT NULL, final INTEGER NOT NULL, args TEXT, kwargs TEXT, result TEXT, exception TEXT, traceback TEXT,
  worker TEXT, queue TEXT, retries INTEGER NOT NULL, sent_at INTEGER, received_at INTEGER, started_at INTEGER, ended_at INTEGER, runtime REAL,
  root_id TEXT, parent_id TEXT, group_id TEXT, eta TEXT, expires TEXT, updated_at INTEGER NOT NULL, state_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_updated ON tasks (updated_at);
${['state', 'name', 'worker', 'queue', 'sent_at', 'received_at', 'started_at', 'ended_at', 'runtime'].map((c) => `CREATE INDEX IF NOT EXISTS tasks_by_${c} ON tasks (${c}, updated_at);`).join('\n')}
CREATE INDEX IF NOT EXISTS tasks_open ON tasks (final, updated_at);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_group ON tasks (group_id) WHERE group_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL, hostname TEXT, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_task ON events (task_id, at, seq);
CREATE TABLE IF NOT EXISTS logs (seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL, at INTEGER NOT NULL, level TEXT NOT NULL, msg TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_task ON logs (task_id, at, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS tasks_text USING fts5(body, content='', contentless_delete=1, tokenize='trigram');
`;

/**
 * Why a trigram index: LIKE '%x%' over four columns reads every row (~150 ms at 100,000 tasks
 * when nothing matches); the trigram index answers a substring of 3+ characters from the index,
 * case-insensitively. It is contentless (rowid = the task's rowid, the text lives in `tasks`).
 * Shorter searches fall back to LIKE.
 */
const SEARCHED = ['args', 'kwargs', 'result', 'exception'] as const;
const MIN_TRIGRAM = 3;
const searchBody = (t: Pick<TaskRecord, (typeof SEARCHED)[number]>): string => SEARCHED.map((k) => t[k] ?? '').join('\n');
/** The text as an FTS5 phrase: quoted, so every character means itself. */
const phrase = (text: string): string => `"${text.replace(/"/g, '""')}"`;

type Row = Record<string, unknown>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function toStored(row: Row): StoredTask {
  const out: Partial<Mutable<StoredTask>> = {};
  for (const [field, column] of Object.entries(COLUMNS)) (out as Row)[field] = row[column] ?? null;
  return out as StoredTask;
}

function toRecord(row: Row): TaskRecord {
  const { stateAt: _stateAt, ...record } = toStored(row);
  return record;
}

/** `%text%` for LIKE with its wildcards escaped (`\` is the escape character). */
const likeArg = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** The WHERE clause of a query and its parameters. */
function where(q: TaskQuery): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (q.id !== undefined) {
    // A range, not LIKE: the primary key index answers it, and `_` / `%` in an id mean themselves.
    parts.push('id >= ? AND id < ?');
    params.push(q.id, `${q.id}\u{10FFFF}`);
  }
  if (q.name !== undefined) {
    if (q.name.endsWith('*')) {
      parts.push('name >= ? AND name < ?');
      params.push(q.name.slice(0, -1), `${q.name.slice(0, -1)}\u{10FFFF}`);
    } else {
      parts.push('name = ?');
      params.push(q.name);
    }
  }
  if (q.states?.length) {
    parts.push(`state IN (${q.states.map(() => '?').join(', ')})`);
    params.push(...q.states);
  }
  for (const [value, column] of [
    [q.worker, 'worker'],
    [q.queue, 'queue'],
  ] as const) {
    if (value === undefined) continue;
    parts.push(`${column} = ?`);
    params.push(value);
  }
  if (q.from !== undefined) {
    parts.push('updated_at >= ?');
    params.push(q.from);
  }
  if (q.to !== undefined) {
    parts.push('updated_at <= ?');
    params.push(q.to);
  }
  if (q.text !== undefined && [...q.text].length >= MIN_TRIGRAM) {
    parts.push('rowid IN (SELECT rowid FROM tasks_text WHERE tasks_text MATCH ?)');
    params.push(phrase(q.text));
  } else if (q.text !== undefined) {
    const arg = likeArg(q.text);
    parts.push(`(args LIKE ? ESCAPE '\\' OR kwargs LIKE ? ESCAPE '\\' OR result LIKE ? ESCAPE '\\' OR exception LIKE ? ESCAPE '\\')`);
    params.push(arg, arg, arg, arg);
  }
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
}

/** {@link HistoryStore} on a SQLite file (WAL, so the dashboard's reads never wait for a batch being written). */
export class SqliteHistoryStore implements HistoryStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly stmt;

  private constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('synchronous = NORMAL');
    if ((this.db.pragma('user_version', { simple: true }) as number) < SCHEMA_VERSION) {
      this.db.exec(`BEGIN IMMEDIATE; ${SCHEMA}
        INSERT INTO tasks_text (rowid, body) SELECT rowid, ${SEARCHED.map((c) => `coalesce(${c}, '')`).join(` || char(10) || `)} FROM tasks WHERE rowid NOT IN (SELECT rowid FROM tasks_text);
        PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
    }
    const cols = Object.values(COLUMNS);
    this.stmt = {
      read: this.db.prepare<[string], Row>('SELECT * FROM tasks WHERE id = ?'),
      upsert: this.db.prepare(
        `INSERT INTO tasks (${cols.join(', ')}, final) VALUES (${cols.map((c) => `@${c}`).join(', ')}, @final)
         ON CONFLICT (id) DO UPDATE SET ${[...cols.filter((c) => c !== 'id'), 'final'].map((c) => `${c} = excluded.${c}`).join(', ')} RETURNING rowid`,
      ),
      unindex: this.db.prepare('DELETE FROM tasks_text WHERE rowid = ?'),
      index: this.db.prepare('INSERT INTO tasks_text (rowid, body) VALUES (?, ?)'),
      event: this.db.prepare('INSERT INTO events (task_id, at, type, hostname, fields) VALUES (?, ?, ?, ?, ?)'),
      log: this.db.prepare('INSERT INTO logs (task_id, at, level, msg) VALUES (?, ?, ?, ?)'),
      capEvents: this.db.prepare(`DELETE FROM events WHERE task_id = ? AND seq NOT IN (SELECT seq FROM events WHERE task_id = ? ORDER BY at DESC, seq DESC LIMIT ${MAX_TIMELINE})`),
      capLogs: this.db.prepare(`DELETE FROM logs WHERE task_id = ? AND seq NOT IN (SELECT seq FROM logs WHERE task_id = ? ORDER BY at DESC, seq DESC LIMIT ${MAX_LOGS})`),
      timeline: this.db.prepare<[string], Row>('SELECT type, at, hostname, fields FROM events WHERE task_id = ? ORDER BY at, seq'),
      logs: this.db.prepare<[string], TaskLogLine>('SELECT at, level, msg FROM logs WHERE task_id = ? ORDER BY at, seq'),
      ref: this.db.prepare<[string], TaskRef>('SELECT id, name, state FROM tasks WHERE id = ?'),
      children: this.db.prepare<[string], TaskRef>(`SELECT id, name, state FROM tasks WHERE parent_id = ? ORDER BY sent_at, updated_at, rowid LIMIT ${MAX_CHILDREN}`),
      group: this.db.prepare<[string, string], TaskRef>(`SELECT id, name, state FROM tasks WHERE group_id = ? AND id != ? ORDER BY sent_at, updated_at, rowid LIMIT ${MAX_GROUP}`),
    };
  }

  /** Open (creating on first use) the history file at `path`. */
  static async open(path: string): Promise<SqliteHistoryStore> {
    return new SqliteHistoryStore(path);
  }

  private applyAll(patches: readonly TaskPatch[]): void {
    this.db.transaction(() => {
      const touched = new Map<string, StoredTask>();
      const before = new Map<string, StoredTask | undefined>();
      const grown = { events: new Set<string>(), logs: new Set<string>() };
      for (const patch of patches) {
        if (!before.has(patch.id)) before.set(patch.id, this.readStored(patch.id));
        const known = touched.get(patch.id) ?? before.get(patch.id);
        touched.set(patch.id, mergeTask(known, patch));
        if (patch.timeline) {
          const t = patch.timeline;
          this.stmt.event.run(patch.id, t.at, t.type, t.hostname, JSON.stringify(t.fields));
          grown.events.add(patch.id);
        }
        for (const line of patch.logs) this.stmt.log.run(patch.id, line.at, line.level, line.msg);
        if (patch.logs.length) grown.logs.add(patch.id);
      }
      for (const task of touched.values()) {
        const row: Row = { final: FINAL_STATES.has(task.state) ? 1 : 0 };
        for (const [field, column] of Object.entries(COLUMNS)) row[column] = task[field as keyof StoredTask];
        const { rowid } = this.stmt.upsert.get(row) as { rowid: number };
        const old = before.get(task.id);
        const body = searchBody(task);
        if (old && searchBody(old) === body) continue;
        if (old) this.stmt.unindex.run(rowid);
        this.stmt.index.run(rowid, body);
      }
      for (const id of grown.events) this.stmt.capEvents.run(id, id);
      for (const id of grown.logs) this.stmt.capLogs.run(id, id);
    })();
  }

  private readStored(id: string): StoredTask | undefined {
    const row = this.stmt.read.get(id);
    return row ? toStored(row) : undefined;
  }

  async ingest(events: readonly CeleryEvent[]): Promise<void> {
    const patches = events.map(eventToPatch).filter((p): p is TaskPatch => p !== undefined);
    if (patches.length) this.applyAll(patches);
  }

  async mergeResult(record: BackendRecord): Promise<void> {
    this.applyAll([backendToPatch(record)]);
  }

  async list(q: TaskQuery): Promise<TaskPage> {
    const w = where(q);
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM tasks ${w.sql}`).get(...w.params) as { n: number }).n;
    const dir = q.order === 'asc' ? 'ASC' : 'DESC';
    const col = SORT_COLUMN[q.sort];
    const order = col === 'updated_at' ? `updated_at ${dir}, rowid ${dir}` : `${col} ${dir}, updated_at ${dir}, rowid ${dir}`;
    // Rowids first (from the index alone), rows after: a deep page skips index entries, not rows.
    const ids = this.db.prepare(`SELECT rowid AS r FROM tasks ${w.sql} ORDER BY ${order} LIMIT ? OFFSET ?`).pluck().all(...w.params, q.limit, q.offset) as number[];
    const rows = ids.length ? (this.db.prepare(`SELECT rowid AS r, * FROM tasks WHERE rowid IN (${ids.map(() => '?').join(', ')})`).all(...ids) as Row[]) : [];
    const byRowid = new Map(rows.map((r) => [r.r as number, r]));
    return { tasks: ids.map((r) => toRecord(byRowid.get(r)!)), total, offset: q.offset, limit: q.limit };
  }

  async get(id: string): Promise<TaskDetail | undefined> {
    const row = this.stmt.read.get(id);
    if (!row) return undefined;
    const task = toRecord(row);
    const timeline: TimelineEntry[] = this.stmt.timeline.all(id).map((e) => ({ type: e.type as string, at: e.at as number, hostname: (e.hostname as string | null) ?? null, fields: JSON.parse(e.fields as string) as Record<string, unknown> }));
    const ref = (other: string | null): TaskRef | null => (other === null || other === id ? null : (this.stmt.ref.get(other) ?? null));
    return {
      ...task,
      timeline,
      logs: this.stmt.logs.all(id),
      queueWaitMs: task.receivedAt !== null && task.startedAt !== null ? Math.max(0, task.startedAt - task.receivedAt) : null,
      relations: {
        parent: ref(task.parentId),
        root: ref(task.rootId),
        children: this.stmt.children.all(id),
        group: task.groupId === null ? [] : this.stmt.group.all(task.groupId, id),
      },
    };
  }

  // `+state` keeps the planner on the ended_at index: a recent span is a short range there, while
  // the state index would walk every SUCCESS ever kept.
  async throughput(since: number, bucketMs: number): Promise<ThroughputPoint[]> {
    const now = Date.now();
    const points = Array.from({ length: bucketCount(since, bucketMs, now) }, (_, i) => ({ at: since + i * bucketMs, succeeded: 0, failed: 0 }));
    const rows = this.db
      .prepare(`SELECT CAST((ended_at - ?) / ? AS INTEGER) AS b, state, COUNT(*) AS n FROM tasks WHERE ended_at >= ? AND ended_at <= ? AND +state IN ('SUCCESS', 'FAILURE') GROUP BY b, state`)
      .all(Math.floor(since), Math.floor(bucketMs), since, now) as { b: number; state: TaskState; n: number }[];
    for (const { b, state, n } of rows) {
      const p = points[b];
      if (p) p[state === 'SUCCESS' ? 'succeeded' : 'failed'] += n;
    }
    return points;
  }

  async stateCounts(): Promise<Partial<Record<TaskState, number>>> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM tasks GROUP BY state').all() as { state: TaskState; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async failuresSince(since: number): Promise<number> {
    return this.db.prepare(`SELECT COUNT(*) FROM tasks WHERE +state = 'FAILURE' AND ended_at >= ?`).pluck().get(since) as number;
  }

  async unfinished(limit: number): Promise<string[]> {
    return this.db.prepare('SELECT id FROM tasks WHERE final = 0 ORDER BY updated_at ASC, rowid ASC LIMIT ?').pluck().all(limit) as string[];
  }

  async prune(policy: RetentionPolicy): Promise<number> {
    return this.db.transaction(() => {
      this.db.exec('CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY); DELETE FROM doomed;');
      if (Number.isFinite(policy.maxAgeMs)) this.db.prepare('INSERT OR IGNORE INTO doomed SELECT id FROM tasks WHERE updated_at < ?').run(Date.now() - policy.maxAgeMs);
      const total = this.db.prepare('SELECT COUNT(*) FROM tasks').pluck().get() as number;
      const aged = this.db.prepare('SELECT COUNT(*) FROM doomed').pluck().get() as number;
      const excess = total - aged - Math.max(0, policy.maxTasks);
      if (Number.isFinite(excess) && excess > 0) {
        this.db.prepare('INSERT OR IGNORE INTO doomed SELECT id FROM tasks WHERE id NOT IN doomed ORDER BY updated_at ASC, rowid ASC LIMIT ?').run(excess);
      }
      this.db.exec('DELETE FROM events WHERE task_id IN doomed; DELETE FROM logs WHERE task_id IN doomed; DELETE FROM tasks_text WHERE rowid IN (SELECT rowid FROM tasks WHERE id IN doomed);');
      const removed = this.db.prepare('DELETE FROM tasks WHERE id IN doomed').run().changes;
      this.db.exec('DELETE FROM doomed');
      return removed;
    })();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    // What SQLite recommends before closing: refresh the planner's statistics where they are stale.
    this.db.pragma('optimize');
    this.db.close();
  }
}
