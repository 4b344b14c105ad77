import type { BeatEntry } from '@celeriac/core/spi';

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
  /**
   * Claim a slot once for all beats: true for the first caller only (the
   * idempotency key per entry and slot). A beat claims before it sends, with
   * its token as `owner`, so that a send that fails can give the claim back
   * ({@link BeatStore.releaseSlot}). A claim without an owner can never be given back.
   */
  claimSlot(name: string, slot: number, ttlMs: number, owner?: string): Promise<boolean>;
  /**
   * Give back a claim whose send failed, so that this beat or another can claim
   * and send the slot. Removes the claim only while `owner` holds it: a claim
   * taken since by another beat, or one that was never this owner's, stays.
   */
  releaseSlot(name: string, slot: number, owner: string): Promise<void>;
  /** Take or renew the leader lease for `token`; false while another beat holds it. */
  acquireLeadership(token: string, leaseMs: number): Promise<boolean>;
  releaseLeadership(token: string): Promise<void>;
  /** Entries added at run time (persisted). */
  listEntries(): Promise<BeatEntry[]>;
  putEntry(entry: BeatEntry): Promise<void>;
  removeEntry(name: string): Promise<boolean>;
  close(): Promise<void>;
}
