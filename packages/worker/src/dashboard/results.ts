/**
 * Final states from the result backend for tasks the history still thinks
 * unfinished: their final event was missed (events off on that worker, the
 * dashboard down or reconnecting), but the result was stored. A Python
 * worker started without events is seen this way, from its clients' task-sent.
 */
import type { CeleriacApp } from '@celeriac/core/spi';
import type { HistoryStore, TaskState } from './model.js';
import { backendRecord } from './views.js';

const FINAL = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
/** Ids asked of the backend per poll. */
const BATCH = 100;
/** A task not final yet is asked again only after this long, so a few stuck ones do not hide the rest. */
const RECHECK_MS = 30_000;

export class ResultPoller {
  private readonly checked = new Map<string, number>();

  constructor(
    private readonly app: CeleriacApp,
    private readonly history: HistoryStore,
    private readonly timeout: <T>(p: Promise<T>, what: string) => Promise<T>,
  ) {}

  /** One poll; resolves to the tasks it settled (for the live feed). */
  async poll(): Promise<{ id: string; name: string | null; state: TaskState }[]> {
    const backend = await this.timeout(this.app.backend(), 'connecting to the result backend');
    // `rpc://` results go only to the client that sent the task: nothing to read here.
    if (!backend.capabilities.sharedResults) return [];
    const now = Date.now();
    const ids = (await this.history.unfinished(BATCH * 5)).filter((id) => now - (this.checked.get(id) ?? 0) > RECHECK_MS).slice(0, BATCH);
    if (ids.length === 0) return [];
    for (const id of ids) this.checked.set(id, now);
    if (this.checked.size > 50 * BATCH) {
      for (const [id, at] of this.checked) if (now - at > RECHECK_MS) this.checked.delete(id);
    }
    const metas = await this.timeout(backend.getMany(ids), 'reading results');
    const settled: { id: string; name: string | null; state: TaskState }[] = [];
    for (const meta of metas) {
      if (!meta || !FINAL.has(meta.status)) continue;
      await this.history.mergeResult(backendRecord(meta));
      this.checked.delete(meta.task_id);
      settled.push({ id: meta.task_id, name: typeof meta.name === 'string' ? meta.name : null, state: meta.status as TaskState });
    }
    return settled;
  }
}
