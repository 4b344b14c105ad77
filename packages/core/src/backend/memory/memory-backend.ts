import { EventEmitter } from 'node:events';
import { TimeoutError } from '../../errors.js';
import { abortReason } from '../../util/abort.js';
import { READY_STATES, type ResultMeta, type TaskState } from '../../protocol/schema.js';
import type { BackendCapabilities, ChordPart, FailedRetention, FailedTaskRecord, ResultBackend, WaitOptions } from '../backend.js';

interface Store {
  readonly records: Map<string, { text: string; expiresAt: number }>;
  readonly revoked: Map<string, number>;
  readonly chords: Map<string, { size: number; parts: Map<number, ChordPart>; completer?: number }>;
  readonly events: EventEmitter;
  readonly dedup: Map<string, { taskId: string; expiresAt: number }>;
  /** Fleet limits: next free slot per bucket, overrides per task, leases per key (holder → expiry). */
  readonly rates: Map<string, number>;
  readonly rateOverrides: Map<string, number | null>;
  readonly leases: Map<string, Map<string, number>>;
  readonly flags: Map<string, string>;
  /** The failed-task registry, oldest first (insertion order after each re-sort). */
  failed: FailedTaskRecord[];
}

const stores = new Map<string, Store>();


function storeNamed(name: string): Store {
  let store = stores.get(name);
  if (!store) {
    const events = new EventEmitter();
    events.setMaxListeners(0);
    store = { records: new Map(), revoked: new Map(), chords: new Map(), events, dedup: new Map(), rates: new Map(), rateOverrides: new Map(), leases: new Map(), flags: new Map(), failed: [] };
    stores.set(name, store);
  }
  return store;
}

/**
 * `memory://[name]` result backend: records are kept as JSON text (as Redis
 * keeps them) and expire lazily on read. `wait` is pushed by an emitter.
 */
export class MemoryBackend implements ResultBackend {
  readonly kind = 'memory';
  readonly capabilities: BackendCapabilities = Object.freeze({ push: true, durable: false, crossProcess: false, chords: true, revocations: true, savedGroups: true, sharedResults: true, deduplication: true, fleetLimits: true, fleetFlags: true, failedRegistry: true });
  private readonly state: Store;

  constructor(name: string) {
    this.state = storeNamed(name);
  }

  private async storeRecord(meta: ResultMeta, expiresMs: number): Promise<void> {
    const current = this.read(meta.task_id);
    if (current?.status === 'SUCCESS') return;
    this.state.records.set(meta.task_id, { text: JSON.stringify(meta), expiresAt: Date.now() + expiresMs });
    this.state.events.emit(meta.task_id, meta);
  }

  store(meta: ResultMeta, options: { expiresMs: number }): Promise<void> {
    return this.storeRecord(meta, options.expiresMs);
  }

  private read(taskId: string): ResultMeta | undefined {
    const rec = this.state.records.get(taskId);
    if (!rec) return undefined;
    if (rec.expiresAt <= Date.now()) {
      this.state.records.delete(taskId);
      return undefined;
    }
    return JSON.parse(rec.text) as ResultMeta;
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    return this.read(taskId);
  }

  async getMany(taskIds: readonly string[]): Promise<(ResultMeta | undefined)[]> {
    return taskIds.map((id) => this.read(id));
  }

  wait(taskId: string, options: WaitOptions = {}): Promise<ResultMeta> {
    return new Promise<ResultMeta>((resolve, reject) => {
      // Listen first, then read: a store between the two cannot be missed.
      const onMeta = (meta: ResultMeta): void => {
        if (READY_STATES.has(meta.status as TaskState)) finish(() => resolve(meta));
      };
      const timer =
        options.timeoutMs !== undefined
          ? setTimeout(
              () => finish(() => reject(new TimeoutError(`Timed out after ${options.timeoutMs} ms waiting for task ${taskId}`, { taskId }))),
              options.timeoutMs,
            )
          : undefined;
      const onAbort = (): void => finish(() => reject(abortReason(options.signal)));
      const finish = (then: () => void): void => {
        clearTimeout(timer);
        this.state.events.off(taskId, onMeta);
        options.signal?.removeEventListener('abort', onAbort);
        then();
      };
      this.state.events.on(taskId, onMeta);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const current = this.read(taskId);
      if (current) onMeta(current);
    });
  }

  async forget(taskId: string): Promise<void> {
    this.state.records.delete(taskId);
  }

  async revoke(taskIds: readonly string[], options: { expiresMs: number }): Promise<void> {
    for (const id of taskIds) this.state.revoked.set(id, Date.now() + options.expiresMs);
  }

  async revokedIds(): Promise<Set<string>> {
    const now = Date.now();
    return new Set([...this.state.revoked].filter(([, until]) => until > now).map(([id]) => id));
  }

  async saveGroup(groupId: string, taskIds: readonly string[], options: { expiresMs: number }): Promise<void> {
    this.state.records.set(`group:${groupId}`, { text: JSON.stringify(taskIds), expiresAt: Date.now() + options.expiresMs });
  }

  async restoreGroup(groupId: string): Promise<string[] | undefined> {
    const rec = this.state.records.get(`group:${groupId}`);
    return rec && rec.expiresAt > Date.now() ? (JSON.parse(rec.text) as string[]) : undefined;
  }

  async chordInit(groupId: string, size: number): Promise<void> {
    this.state.chords.set(groupId, { size, parts: new Map() });
  }

  async chordPartReturn(groupId: string, part: ChordPart): Promise<ChordPart[] | null> {
    const chord = this.state.chords.get(groupId);
    if (!chord) return null;
    if (!chord.parts.has(part.index)) chord.parts.set(part.index, part);
    if (chord.parts.size < chord.size) return null;
    // Only the member that completed the join (or its own re-run) sends the body.
    chord.completer ??= part.index;
    if (chord.completer !== part.index) return null;
    return [...chord.parts.values()].sort((a, b) => a.index - b.index);
  }

  async chordComplete(groupId: string): Promise<void> {
    this.state.chords.delete(groupId);
  }

  async claimDedup(key: string, taskId: string, options: { readonly ttlMs: number; readonly replace: boolean }): Promise<string | null> {
    const now = Date.now();
    // Expired keys are dropped on the way, so a long-lived process does not keep every window it saw.
    if (this.state.dedup.size > 1000) for (const [k, v] of this.state.dedup) if (v.expiresAt <= now) this.state.dedup.delete(k);
    const held = this.state.dedup.get(key);
    const holder = held && held.expiresAt > now ? held.taskId : null;
    if (holder !== null && !options.replace) return holder;
    this.state.dedup.set(key, { taskId, expiresAt: now + options.ttlMs });
    return holder;
  }

  async releaseDedup(key: string, taskId: string): Promise<void> {
    if (this.state.dedup.get(key)?.taskId === taskId) this.state.dedup.delete(key);
  }

  async reserveRateSlot(taskName: string, bucket: string, intervalMs: number): Promise<number> {
    const override = this.state.rateOverrides.get(taskName);
    if (override === null) return 0;
    const now = Date.now();
    const slot = Math.max(now, this.state.rates.get(bucket) ?? 0);
    this.state.rates.set(bucket, slot + (override ?? intervalMs));
    return slot - now;
  }

  async setRateOverride(taskName: string, intervalMs: number | null | undefined): Promise<void> {
    if (intervalMs === undefined) this.state.rateOverrides.delete(taskName);
    else this.state.rateOverrides.set(taskName, intervalMs);
  }

  async acquireLease(key: string, holder: string, limit: number, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    let held = this.state.leases.get(key);
    if (!held) this.state.leases.set(key, (held = new Map()));
    for (const [h, until] of held) if (until <= now) held.delete(h);
    if (!held.has(holder) && held.size >= limit) return false;
    held.set(holder, now + leaseMs);
    return true;
  }

  async releaseLease(key: string, holder: string): Promise<void> {
    this.state.leases.get(key)?.delete(holder);
  }

  async readFlags(): Promise<Record<string, string>> {
    return Object.fromEntries(this.state.flags);
  }

  async writeFlag(name: string, value: string | null): Promise<void> {
    if (value === null) this.state.flags.delete(name);
    else this.state.flags.set(name, value);
  }

  async keepFailed(record: FailedTaskRecord, retention: FailedRetention): Promise<void> {
    const oldest = Date.now() - retention.maxAgeMs;
    const kept = [...this.state.failed.filter((r) => r.id !== record.id), record].filter((r) => r.endedAt >= oldest).sort((a, b) => a.endedAt - b.endedAt);
    this.state.failed = kept.slice(Math.max(0, kept.length - retention.maxCount));
  }

  async listFailed(page: { readonly offset: number; readonly limit: number }): Promise<FailedTaskRecord[]> {
    return this.state.failed.slice(page.offset, page.offset + page.limit);
  }

  async failedCount(): Promise<number> {
    return this.state.failed.length;
  }

  async getFailed(id: string): Promise<FailedTaskRecord | undefined> {
    return this.state.failed.find((r) => r.id === id);
  }

  async takeFailed(id: string): Promise<FailedTaskRecord | undefined> {
    const found = this.state.failed.find((r) => r.id === id);
    if (found) this.state.failed = this.state.failed.filter((r) => r !== found);
    return found;
  }

  async close(): Promise<void> {}
}
