import type { BeatEntry } from '@celeriac/core/spi';
import type { BeatStore, EntryState } from './store.js';

/** In-process store for tests and `memory://` apps; `clock` is injectable. */
export class MemoryBeatStore implements BeatStore {
  readonly kind = 'memory';
  private readonly states = new Map<string, EntryState>();
  /** Claims: key → expiry and owner ('' for a claim taken without one). */
  private readonly claims = new Map<string, { until: number; owner: string }>();
  private readonly entries = new Map<string, BeatEntry>();
  private leader: { token: string; until: number } | undefined;

  constructor(private readonly clock: () => number = Date.now) {}

  async time(): Promise<number> {
    return this.clock();
  }
  async getState(name: string): Promise<EntryState | undefined> {
    const s = this.states.get(name);
    return s && { ...s };
  }
  async setState(name: string, state: EntryState): Promise<void> {
    this.states.set(name, { ...state });
  }
  async claimSlot(name: string, slot: number, ttlMs: number, owner = ''): Promise<boolean> {
    const key = `${name}\u0000${slot}`;
    const now = this.clock();
    const held = this.claims.get(key);
    if (held !== undefined && held.until > now) return false;
    this.claims.set(key, { until: now + ttlMs, owner });
    return true;
  }
  async releaseSlot(name: string, slot: number, owner: string): Promise<void> {
    const key = `${name}\u0000${slot}`;
    const held = this.claims.get(key);
    if (owner !== '' && held?.owner === owner) this.claims.delete(key);
  }
  async acquireLeadership(token: string, leaseMs: number): Promise<boolean> {
    const now = this.clock();
    if (this.leader && this.leader.until > now && this.leader.token !== token) return false;
    this.leader = { token, until: now + leaseMs };
    return true;
  }
  async releaseLeadership(token: string): Promise<void> {
    if (this.leader?.token === token) this.leader = undefined;
  }
  async listEntries(): Promise<BeatEntry[]> {
    return [...this.entries.values()];
  }
  async putEntry(entry: BeatEntry): Promise<void> {
    this.entries.set(entry.name, entry);
  }
  async removeEntry(name: string): Promise<boolean> {
    return this.entries.delete(name);
  }
  async close(): Promise<void> {}
}
