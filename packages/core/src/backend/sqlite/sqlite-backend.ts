import { TimeoutError } from '../../errors.js';
import { READY_STATES, type ResultMeta, type TaskState } from '../../protocol/schema.js';
import { ChangeHints, openDb, type Db } from '../../drivers/sqlite/db.js';
import { PollBackoff } from '../../util/backoff.js';
import type { BackendCapabilities, ChordPart, FailedRetention, FailedTaskRecord, ResultBackend, WaitOptions } from '../backend.js';
import { abortReason } from '../../util/abort.js';

/** Expired rows are swept at most this often (reads already ignore them). */
const SWEEP_EVERY_MS = 60_000;

/**
 * `sqlite://path` result backend: one row per task in Celery's record shape,
 * with an expiry. `wait` polls with a backoff, woken early by writes in this
 * process and by WAL-file change hints from others.
 */
export class SqliteBackend implements ResultBackend {
  readonly kind = 'sqlite';
  readonly capabilities: BackendCapabilities = Object.freeze({ push: false, durable: true, crossProcess: true, chords: true, revocations: true, savedGroups: true, sharedResults: true, deduplication: true, fleetLimits: true, fleetFlags: true, failedRegistry: true });
  private lastSweep = 0;
  private readonly waiters = new Set<PollBackoff>();
  private readonly onChange = (): void => {
    for (const w of this.waiters) w.wake();
  };

  private constructor(
    readonly db: Db,
    private readonly path: string,
    private readonly hints: ChangeHints,
  ) {
    hints.on('change', this.onChange);
  }

  static async open(path: string): Promise<SqliteBackend> {
    return new SqliteBackend(await openDb(path), path, ChangeHints.acquire(path));
  }

  async store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    const now = Date.now();
    // A stored SUCCESS is final: the conflict update is skipped for it.
    this.db
      .prepare(
        `INSERT INTO results (task_id, status, meta, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, meta = excluded.meta, expires_at = excluded.expires_at
         WHERE results.status != 'SUCCESS' OR results.expires_at <= ?`,
      )
      .run(meta.task_id, meta.status, JSON.stringify(meta), now + options.expiresMs, now);
    this.hints.notify();
    if (now - this.lastSweep > SWEEP_EVERY_MS) {
      this.lastSweep = now;
      this.db.prepare('DELETE FROM results WHERE expires_at <= ?').run(now);
      this.db.prepare('DELETE FROM revoked WHERE expires_at <= ?').run(now);
    }
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    const row = this.db.prepare('SELECT meta FROM results WHERE task_id = ? AND expires_at > ?').get(taskId, Date.now()) as
      | { meta: string }
      | undefined;
    return row ? (JSON.parse(row.meta) as ResultMeta) : undefined;
  }

  async getMany(taskIds: readonly string[]): Promise<(ResultMeta | undefined)[]> {
    return Promise.all(taskIds.map((id) => this.get(id)));
  }

  async wait(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    const deadline = options.timeoutMs !== undefined ? Date.now() + options.timeoutMs : Infinity;
    const backoff = new PollBackoff(1, 100);
    this.waiters.add(backoff);
    const onAbort = (): void => backoff.wake();
    options.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        const meta = await this.get(taskId);
        if (meta && READY_STATES.has(meta.status as TaskState)) return meta;
        if (options.signal?.aborted) throw abortReason(options.signal);
        if (Date.now() >= deadline) {
          throw new TimeoutError(`Timed out after ${options.timeoutMs} ms waiting for task ${taskId}`, { taskId });
        }
        await backoff.sleep(deadline - Date.now());
      }
    } finally {
      this.waiters.delete(backoff);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async forget(taskId: string): Promise<void> {
    this.db.prepare('DELETE FROM results WHERE task_id = ?').run(taskId);
  }

  async revoke(taskIds: readonly string[], options: { expiresMs: number }): Promise<void> {
    const put = this.db.prepare('INSERT OR REPLACE INTO revoked (task_id, expires_at) VALUES (?, ?)');
    const until = Date.now() + options.expiresMs;
    this.db.transaction(() => taskIds.forEach((id) => put.run(id, until)))();
  }

  async revokedIds(): Promise<Set<string>> {
    const rows = this.db.prepare('SELECT task_id FROM revoked WHERE expires_at > ?').all(Date.now()) as { task_id: string }[];
    return new Set(rows.map((r) => r.task_id));
  }

  async saveGroup(groupId: string, taskIds: readonly string[], options: { expiresMs: number }): Promise<void> {
    this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`group:${groupId}`, JSON.stringify(taskIds), Date.now() + options.expiresMs);
  }

  async restoreGroup(groupId: string): Promise<string[] | undefined> {
    const row = this.db.prepare('SELECT value FROM kv WHERE key = ? AND expires_at > ?').get(`group:${groupId}`, Date.now()) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as string[]) : undefined;
  }

  async chordInit(groupId: string, size: number, options: { expiresMs: number }): Promise<void> {
    this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`chord:${groupId}:size`, String(size), Date.now() + options.expiresMs);
  }

  async chordPartReturn(groupId: string, part: ChordPart, options: { expiresMs: number }): Promise<ChordPart[] | null> {
    const now = Date.now();
    const prefix = `chord:${groupId}:part:`;
    return this.db
      .transaction(() => {
        const size = this.db.prepare('SELECT value FROM kv WHERE key = ? AND expires_at > ?').get(`chord:${groupId}:size`, now) as { value: string } | undefined;
        if (!size) return null;
        // INSERT OR IGNORE by index: a member that ran twice counts once.
        this.db.prepare('INSERT OR IGNORE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`${prefix}${part.index}`, JSON.stringify(part), now + options.expiresMs);
        const rows = this.db.prepare('SELECT value FROM kv WHERE key >= ? AND key < ?').all(prefix, `${prefix}\uffff`) as { value: string }[];
        if (rows.length < Number(size.value)) return null;
        // Only the member that completed the join (or its own re-run) sends the body.
        this.db.prepare('INSERT OR IGNORE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`chord:${groupId}:completer`, String(part.index), now + options.expiresMs);
        const completer = this.db.prepare('SELECT value FROM kv WHERE key = ?').get(`chord:${groupId}:completer`) as { value: string };
        if (Number(completer.value) !== part.index) return null;
        return rows.map((r) => JSON.parse(r.value) as ChordPart).sort((a, b) => a.index - b.index);
      })
      .immediate();
  }

  async chordComplete(groupId: string): Promise<void> {
    const prefix = `chord:${groupId}:part:`;
    // The size row goes with the parts: a late member then finds no join and writes nothing.
    this.db.prepare('DELETE FROM kv WHERE key IN (?, ?) OR (key >= ? AND key < ?)').run(`chord:${groupId}:size`, `chord:${groupId}:completer`, prefix, `${prefix}\uffff`);
  }

  async claimDedup(key: string, taskId: string, options: { readonly ttlMs: number; readonly replace: boolean }): Promise<string | null> {
    const now = Date.now();
    // IMMEDIATE: two processes claiming at once are serialised by SQLite's write lock.
    return this.db
      .transaction(() => {
        const row = this.db.prepare('SELECT value FROM kv WHERE key = ? AND expires_at > ?').get(`dedup:${key}`, now) as { value: string } | undefined;
        if (row && !options.replace) return row.value;
        this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`dedup:${key}`, taskId, now + options.ttlMs);
        return row?.value ?? null;
      })
      .immediate();
  }

  async releaseDedup(key: string, taskId: string): Promise<void> {
    this.db.prepare('DELETE FROM kv WHERE key = ? AND value = ?').run(`dedup:${key}`, taskId);
  }

  async reserveRateSlot(taskName: string, bucket: string, intervalMs: number): Promise<number> {
    // One machine shares a SQLite file: its clock is the one clock; IMMEDIATE serialises the bookings.
    return this.db
      .transaction(() => {
        const now = Date.now();
        const override = this.db.prepare('SELECT value FROM kv WHERE key = ?').get(`rate-limit:${taskName}`) as { value: string } | undefined;
        if (override?.value === 'none') return 0;
        const interval = override ? Number(override.value) : Math.max(1, Math.round(intervalMs));
        const next = this.db.prepare('SELECT value FROM kv WHERE key = ? AND expires_at > ?').get(`rate:${bucket}`, now) as { value: string } | undefined;
        const slot = Math.max(now, next ? Number(next.value) : 0);
        this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`rate:${bucket}`, String(slot + interval), slot + interval + 1000);
        return slot - now;
      })
      .immediate();
  }

  async setRateOverride(taskName: string, intervalMs: number | null | undefined): Promise<void> {
    if (intervalMs === undefined) this.db.prepare('DELETE FROM kv WHERE key = ?').run(`rate-limit:${taskName}`);
    else this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, NULL)').run(`rate-limit:${taskName}`, intervalMs === null ? 'none' : String(Math.max(1, Math.round(intervalMs))));
  }

  async acquireLease(key: string, holder: string, limit: number, leaseMs: number): Promise<boolean> {
    const prefix = `lease:${key}:`;
    return this.db
      .transaction(() => {
        const now = Date.now();
        this.db.prepare('DELETE FROM kv WHERE key >= ? AND key < ? AND expires_at <= ?').run(prefix, `${prefix}\uffff`, now);
        const mine = this.db.prepare('SELECT 1 FROM kv WHERE key = ?').get(`${prefix}${holder}`);
        const held = (this.db.prepare('SELECT COUNT(*) AS n FROM kv WHERE key >= ? AND key < ?').get(prefix, `${prefix}\uffff`) as { n: number }).n;
        if (!mine && held >= limit) return false;
        this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`${prefix}${holder}`, holder, now + leaseMs);
        return true;
      })
      .immediate();
  }

  async releaseLease(key: string, holder: string): Promise<void> {
    this.db.prepare('DELETE FROM kv WHERE key = ?').run(`lease:${key}:${holder}`);
  }

  async readFlags(): Promise<Record<string, string>> {
    const rows = this.db.prepare("SELECT key, value FROM kv WHERE key >= 'flag:' AND key < 'flag;'").all() as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key.slice('flag:'.length), r.value]));
  }

  async writeFlag(name: string, value: string | null): Promise<void> {
    if (value === null) this.db.prepare('DELETE FROM kv WHERE key = ?').run(`flag:${name}`);
    else this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, NULL)').run(`flag:${name}`, value);
  }

  async keepFailed(record: FailedTaskRecord, retention: FailedRetention): Promise<void> {
    this.db
      .transaction(() => {
        this.db.prepare('INSERT OR REPLACE INTO failed_tasks (id, ended_at, record) VALUES (?, ?, ?)').run(record.id, record.endedAt, JSON.stringify(record));
        this.db.prepare('DELETE FROM failed_tasks WHERE ended_at < ?').run(Date.now() - retention.maxAgeMs);
        this.db
          .prepare('DELETE FROM failed_tasks WHERE id IN (SELECT id FROM failed_tasks ORDER BY ended_at DESC, id DESC LIMIT -1 OFFSET ?)')
          .run(retention.maxCount);
      })
      .immediate();
  }

  async listFailed(page: { readonly offset: number; readonly limit: number }): Promise<FailedTaskRecord[]> {
    const rows = this.db.prepare('SELECT record FROM failed_tasks ORDER BY ended_at, id LIMIT ? OFFSET ?').all(page.limit, page.offset) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as FailedTaskRecord);
  }

  async failedCount(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM failed_tasks').get() as { n: number }).n;
  }

  async getFailed(id: string): Promise<FailedTaskRecord | undefined> {
    const row = this.db.prepare('SELECT record FROM failed_tasks WHERE id = ?').get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as FailedTaskRecord) : undefined;
  }

  async takeFailed(id: string): Promise<FailedTaskRecord | undefined> {
    const row = this.db.prepare('DELETE FROM failed_tasks WHERE id = ? RETURNING record').get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as FailedTaskRecord) : undefined;
  }

  async close(): Promise<void> {
    this.hints.off('change', this.onChange);
    ChangeHints.release(this.path);
    this.db.close();
  }
}
