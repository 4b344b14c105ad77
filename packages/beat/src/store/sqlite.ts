import { openDb, type BeatEntry, type Db } from '@celeriac/core/spi';
import type { BeatStore, EntryState } from './store.js';

/**
 * Beat state in the embedded default's SQLite file (its `kv` table): one
 * machine, so the local clock is the reference. The lease and the claims are
 * taken in `BEGIN IMMEDIATE` transactions, so two beat processes never both win.
 */
export class SqliteBeatStore implements BeatStore {
  readonly kind = 'sqlite';

  private constructor(
    private readonly db: Db,
    private readonly clock: () => number,
  ) {}

  static async open(path: string, clock: () => number = Date.now): Promise<SqliteBeatStore> {
    return new SqliteBeatStore(await openDb(path), clock);
  }

  private get(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)').get(key, this.clock()) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  private put(key: string, value: string, expiresAt: number | null = null): void {
    this.db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(key, value, expiresAt);
  }

  async time(): Promise<number> {
    return this.clock();
  }
  async getState(name: string): Promise<EntryState | undefined> {
    const v = this.get(`beat:state:${name}`);
    return v ? (JSON.parse(v) as EntryState) : undefined;
  }
  async setState(name: string, state: EntryState): Promise<void> {
    this.put(`beat:state:${name}`, JSON.stringify(state));
  }
  async claimSlot(name: string, slot: number, ttlMs: number, owner?: string): Promise<boolean> {
    const now = this.clock();
    return this.db
      .transaction(() => {
        // Expired claims are swept here: the table never grows without bound.
        this.db.prepare("DELETE FROM kv WHERE key LIKE 'beat:claim:%' AND expires_at <= ?").run(now);
        // The value is the owner's token ('1' without one, as claims were written before owners existed).
        return this.db.prepare('INSERT OR IGNORE INTO kv (key, value, expires_at) VALUES (?, ?, ?)').run(`beat:claim:${name}:${slot}`, owner ?? '1', now + ttlMs).changes === 1;
      })
      .immediate();
  }
  async releaseSlot(name: string, slot: number, owner: string): Promise<void> {
    if (owner === '' || owner === '1') return; // never an owner: those claims cannot be given back
    this.db.prepare('DELETE FROM kv WHERE key = ? AND value = ?').run(`beat:claim:${name}:${slot}`, owner);
  }
  async acquireLeadership(token: string, leaseMs: number): Promise<boolean> {
    const now = this.clock();
    return this.db
      .transaction(() => {
        const holder = this.get('beat:leader');
        if (holder !== undefined && holder !== token) return false;
        this.put('beat:leader', token, now + leaseMs);
        return true;
      })
      .immediate();
  }
  async releaseLeadership(token: string): Promise<void> {
    this.db.prepare("DELETE FROM kv WHERE key = 'beat:leader' AND value = ?").run(token);
  }
  async listEntries(): Promise<BeatEntry[]> {
    const rows = this.db.prepare("SELECT value FROM kv WHERE key LIKE 'beat:entry:%'").all() as { value: string }[];
    return rows.map((r) => JSON.parse(r.value) as BeatEntry);
  }
  async putEntry(entry: BeatEntry): Promise<void> {
    this.put(`beat:entry:${entry.name}`, JSON.stringify(entry));
  }
  async removeEntry(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM kv WHERE key = ?').run(`beat:entry:${name}`).changes === 1;
  }
  async close(): Promise<void> {
    this.db.close();
  }
}
