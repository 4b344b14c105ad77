import type { BeatEntry } from '@celeriac/core';

/** What a beat remembers per entry between runs (and restarts). */
export interface EntryState {
  /** The last slot sent. */
  lastRunAt: number | null;
  /** The next slot to send. */
  nextRunAt: number | null;
  /** Fingerprint of the schedule the state was computed for: an edited entry recomputes its next run. */
  scheduleKey: string;
}

/**
 * Where beat keeps its state, its leader lease, its per-slot claims and the
 * entries added at run time: SQLite for the embedded default, Redis for Redis
 * deployments, memory for tests.
 */
export interface BeatStore {
  readonly kind: string;
  /** The reference clock every beat on this store agrees on (Redis TIME; the local clock otherwise). */
  time(): Promise<number>;
  getState(name: string): Promise<EntryState | undefined>;
  setState(name: string, state: EntryState): Promise<void>;
  /** Claim a slot once for all beats: true for the first caller only (the idempotency key per entry and slot). */
  claimSlot(name: string, slot: number, ttlMs: number): Promise<boolean>;
  /** Take or renew the leader lease for `token`; false while another beat holds it. */
  acquireLeadership(token: string, leaseMs: number): Promise<boolean>;
  releaseLeadership(token: string): Promise<void>;
  /** Entries added at run time (persisted). */
  listEntries(): Promise<BeatEntry[]>;
  putEntry(entry: BeatEntry): Promise<void>;
  removeEntry(name: string): Promise<boolean>;
  close(): Promise<void>;
}
