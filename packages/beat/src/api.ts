import { parseBeatEntry, UnknownBeatEntryError, type BeatEntry, type BeatEntryInput } from '@celeriac/core/spi';
import { compileSchedule } from './schedule.js';
import type { BeatStore, EntryState } from './store/store.js';

/** One entry as `beat list` shows it. */
export interface EntryView {
  readonly entry: BeatEntry;
  readonly source: 'code' | 'api';
  readonly state: EntryState | undefined;
}

/**
 * The run-time schedule API: entries added here persist in the beat store and
 * are picked up by the running beat on its next tick; an edited entry's next
 * run is recomputed (its schedule fingerprint changes).
 */
export class BeatSchedules {
  constructor(
    private readonly store: BeatStore,
    private readonly codeEntries: () => BeatEntry[] = () => [],
    private readonly timezone?: string,
  ) {}

  async add(input: BeatEntryInput): Promise<BeatEntry> {
    const entry = parseBeatEntry(input);
    compileSchedule(entry.schedule, this.timezone); // refuse a bad cron or zone now, not at the next tick
    await this.store.putEntry(entry);
    return entry;
  }

  async update(name: string, patch: Partial<BeatEntryInput>): Promise<BeatEntry> {
    const current = (await this.list()).find((v) => v.entry.name === name);
    if (!current) throw new UnknownBeatEntryError(name);
    return this.add({ ...current.entry, ...patch, name });
  }

  async remove(name: string): Promise<boolean> {
    return this.store.removeEntry(name);
  }

  enable(name: string): Promise<BeatEntry> {
    return this.update(name, { enabled: true });
  }

  disable(name: string): Promise<BeatEntry> {
    return this.update(name, { enabled: false });
  }

  async list(): Promise<EntryView[]> {
    const api = await this.store.listEntries();
    const names = new Set(api.map((e) => e.name));
    const all: { entry: BeatEntry; source: 'code' | 'api' }[] = [
      ...this.codeEntries().filter((e) => !names.has(e.name)).map((entry) => ({ entry, source: 'code' as const })),
      ...api.map((entry) => ({ entry, source: 'api' as const })),
    ];
    return Promise.all(all.map(async (v) => ({ ...v, state: await this.store.getState(v.entry.name) })));
  }
}
