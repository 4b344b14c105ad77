/**
 * The task history on Redis, for dashboards that share one history or run where no file
 * persists. Layout and scripts: `redis-scripts.ts`. Writes read the tasks they touch, merge
 * the events in process (`ingest.ts`, the same rules as SQLite) and write every hash and index
 * of up to 500 tasks with one script inside MULTI under WATCH of their hashes, so two dashboards
 * feeding one history never lose each other's update (the loser reads again and retries).
 */
import { randomUUID } from 'node:crypto';
import { connectRedis, parseUrl, redisSettings, type CeleryEvent } from '@celeriac/core/spi';
import { FINAL_STATES, TASK_STATES, type BackendRecord, type HistoryStore, type RetentionPolicy, type TaskDetail, type TaskLogLine, type TaskPage, type TaskQuery, type TaskRecord, type TaskRef, type TaskState, type ThroughputPoint, type TimelineEntry } from '../model.js';
import { backendToPatch, eventToPatch, MAX_LOGS, MAX_TIMELINE, mergeTask, type StoredTask, type TaskPatch } from './ingest.js';
import { LIST_TASKS, MAX_TEXT_SCAN } from './redis-list.js';
import { FIELD_INDEXES, NULL_VALUE, NUMERIC_SORTS, PRUNE_TASKS, TEXT_SORTS, WRITE_TASKS } from './redis-scripts.js';
import { bucketCount, MAX_CHILDREN, MAX_GROUP } from './shared.js';

type Redis = Awaited<ReturnType<typeof connectRedis>>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The history's own namespace, after the URL's `keyPrefix`. */
export const REDIS_HISTORY_PREFIX = 'celeriac:dash:';
/** What a text search reads of a task (kept lowercased in the `q` hash: see redis-scripts.ts). */
const SEARCHED = ['args', 'kwargs', 'result', 'exception'] as const;
const NUMBERS = new Set(['retries', 'sentAt', 'receivedAt', 'startedAt', 'endedAt', 'runtime', 'updatedAt', 'stateAt']);
/** Tasks one prune step deletes (one script call: short, so other clients are not held up). */
const PRUNE_CHUNK = 500;
/** Tasks one write step covers (one WATCH, one script). */
const WRITE_CHUNK = 500;
/** Retries of a batch whose tasks another writer changed meanwhile. */
const MAX_WATCH_RETRIES = 20;

interface Scripted {
  historyList(scratch: string, ...args: (string | number)[]): Promise<(string | number)[]>;
  historyPrune(...args: string[]): Promise<number>;
}

function decode(h: Record<string, string>): StoredTask | undefined {
  if (!h.id) return undefined;
  const out: Record<string, unknown> = { name: null, args: null, kwargs: null, result: null, exception: null, traceback: null, worker: null, queue: null, sentAt: null, receivedAt: null, startedAt: null, endedAt: null, runtime: null, rootId: null, parentId: null, groupId: null, eta: null, expires: null };
  for (const [k, v] of Object.entries(h)) out[k] = NUMBERS.has(k) ? Number(v) : v;
  return out as unknown as StoredTask;
}

/** Lowercase A–Z only, both the stored texts and the search (so non-ASCII letters match case-sensitively here). */
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (c) => c.toLowerCase());

function record(task: StoredTask): TaskRecord {
  const { stateAt: _stateAt, ...rest } = task;
  return rest;
}

/** A sortable, unique member for a timeline or log entry: the arrival order breaks ties of time. */
let seq = 0;
const member = (nonce: string, value: unknown): string => `${nonce}${(++seq).toString(36).padStart(8, '0')}|${JSON.stringify(value)}`;
const unmember = <T>(m: string): T => JSON.parse(m.slice(m.indexOf('|') + 1)) as T;

/** {@link HistoryStore} on Redis (one node or sentinel; keys under {@link REDIS_HISTORY_PREFIX}). */
export class RedisHistoryStore implements HistoryStore {
  readonly kind = 'redis' as const;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly nonce = randomUUID().slice(0, 8);

  private constructor(
    private readonly redis: Redis & Scripted,
    /** A connection of its own for WATCH / MULTI: WATCH is per connection. */
    private readonly writer: Redis,
    readonly prefix: string,
  ) {}

  /** Connect to the Redis `url` names (redis:// or rediss://, `?keyPrefix=` to share a server). */
  static async open(url: string): Promise<RedisHistoryStore> {
    const settings = redisSettings(parseUrl('history', url, ['redis', 'rediss']));
    // Scripts name keys themselves, so the prefix is ours to add, not ioredis's.
    const plain = { ...settings, options: { ...settings.options, keyPrefix: '' } };
    const redis = await connectRedis(plain);
    const writer = await connectRedis(plain, 'consumer').catch((err: unknown) => {
      redis.disconnect();
      throw err;
    });
    redis.defineCommand('historyList', { lua: LIST_TASKS, numberOfKeys: 1 });
    redis.defineCommand('historyPrune', { lua: PRUNE_TASKS, numberOfKeys: 0 });
    writer.defineCommand('historyWrite', { lua: WRITE_TASKS, numberOfKeys: 0 });
    return new RedisHistoryStore(redis as Redis & Scripted, writer, settings.keyPrefix + REDIS_HISTORY_PREFIX);
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join('');
  }

  /** Run writes one after another in this process (WATCH settles the races with other processes). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private apply(patches: readonly TaskPatch[]): Promise<void> {
    if (!patches.length) return Promise.resolve();
    return this.serial(async () => {
      // Tasks are independent: a big batch goes as several steps of WRITE_CHUNK tasks, so no
      // single script holds Redis (and every other client of it) for long.
      const byId = new Map<string, TaskPatch[]>();
      for (const p of patches) {
        const list = byId.get(p.id);
        if (list) list.push(p);
        else byId.set(p.id, [p]);
      }
      const ids = [...byId.keys()];
      for (let i = 0; i < ids.length; i += WRITE_CHUNK) await this.writeChunk(ids.slice(i, i + WRITE_CHUNK), byId);
    });
  }

  private async writeChunk(ids: readonly string[], byId: ReadonlyMap<string, readonly TaskPatch[]>): Promise<void> {
    const hashes = ids.map((id) => this.key('t:', id));
    for (let attempt = 0; attempt < MAX_WATCH_RETRIES; attempt++) {
      if (await this.writeOnce(ids, hashes, byId)) return;
    }
    throw new Error(`history: ${ids.length} tasks kept changing under ${MAX_WATCH_RETRIES} attempts to write them`);
  }

  /** One WATCH / read / MULTI round: false when another writer changed one of the tasks meanwhile. */
  private async writeOnce(ids: readonly string[], hashes: readonly string[], byId: ReadonlyMap<string, readonly TaskPatch[]>): Promise<boolean> {
    await this.writer.watch(...hashes);
    try {
      const read = await this.writer.pipeline(hashes.map((h) => ['hgetall', h])).exec();
      const before = new Map<string, StoredTask | undefined>(ids.map((id, i) => [id, decode((read?.[i]?.[1] ?? {}) as Record<string, string>)]));
      const ops = ids.map((id) => {
        const mine = byId.get(id)!;
        let task = before.get(id);
        for (const p of mine) task = mergeTask(task, p);
        return this.writeOp(before.get(id), task!, mine);
      });
      const multi = this.writer.multi() as ReturnType<Redis['multi']> & { historyWrite(...args: (string | number)[]): unknown };
      multi.historyWrite(this.prefix, MAX_TIMELINE, MAX_LOGS, ...ops);
      return (await multi.exec()) !== null;
    } catch (err) {
      await this.writer.unwatch().catch(() => undefined);
      throw err;
    }
  }

  /**
   * What writing `task` (known before as `old`) takes, as one entry of the write-tasks script:
   * only the indexes whose membership or score changed, so a batch stays small.
   */
  private writeOp(old: StoredTask | undefined, task: StoredTask, mine: readonly TaskPatch[]): string {
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(task)) if (v !== null && (old === undefined || old[k as keyof StoredTask] !== v)) set[k] = String(v);
    const q = SEARCHED.some((k) => old?.[k] !== task[k]) ? asciiLower(SEARCHED.map((k) => task[k] ?? '').join('\0')) : undefined;
    const add: [string, number][] = [];
    const rem: string[] = [];
    const moved = old === undefined || old.updatedAt !== task.updatedAt;
    const vals: [string, string][] = [];
    for (const [field, family] of Object.entries(FIELD_INDEXES) as [keyof typeof FIELD_INDEXES, string][]) {
      // name, worker and queue sort: a null one is indexed too, under NULL_VALUE.
      const values = field in TEXT_SORTS && field !== 'state' ? TEXT_SORTS[field as 'name'][1] : null;
      const was = old ? (old[field] ?? (values ? NULL_VALUE : null)) : null;
      const now = task[field] ?? (values ? NULL_VALUE : null);
      if (was !== null && was !== now) rem.push(family + was);
      if (now !== null && (moved || was !== now)) add.push([family + now, task.updatedAt]);
      if (values && task[field] !== null && was !== now) vals.push([values, task[field]]);
    }
    if (moved) add.push(['i:all', task.updatedAt]);
    if (FINAL_STATES.has(task.state)) {
      if (old && !FINAL_STATES.has(old.state)) rem.push('i:open');
    } else if (moved || !old) add.push(['i:open', task.updatedAt]);
    for (const k of NUMERIC_SORTS) if (!old || old[k] !== task[k]) add.push([`s:${k}`, task[k] ?? -1]);
    for (const s of ['SUCCESS', 'FAILURE'] as const) {
      if (task.state === s && task.endedAt !== null) {
        if (old?.state !== s || old.endedAt !== task.endedAt) add.push([`done:${s}`, task.endedAt]);
      } else if (old?.state === s) rem.push(`done:${s}`);
    }
    if (!old) add.push(['ids', 0]);
    const tl = mine.flatMap((p) => (p.timeline ? [[p.timeline.at, member(this.nonce, p.timeline)]] : []));
    const log = mine.flatMap((p) => p.logs.map((l) => [l.at, member(this.nonce, l)]));
    return JSON.stringify({ id: task.id, set, q, add, rem, vals, tl, log });
  }

  async ingest(events: readonly CeleryEvent[]): Promise<void> {
    await this.apply(events.map(eventToPatch).filter((p): p is TaskPatch => p !== undefined));
  }

  async mergeResult(rec: BackendRecord): Promise<void> {
    await this.apply([backendToPatch(rec)]);
  }

  private async tasks(ids: readonly string[]): Promise<(StoredTask | undefined)[]> {
    if (!ids.length) return [];
    const res = await this.redis.pipeline(ids.map((id) => ['hgetall', this.key('t:', id)])).exec();
    return ids.map((_, i) => decode((res?.[i]?.[1] ?? {}) as Record<string, string>));
  }

  async list(q: TaskQuery): Promise<TaskPage> {
    const text = q.text === undefined ? '' : asciiLower(q.text);
    const args = [this.prefix, q.sort, q.order, q.offset, q.limit, q.from ?? '-inf', q.to ?? '+inf', text, MAX_TEXT_SCAN, q.id ?? '', q.name ?? '', q.worker ?? '', q.queue ?? '', ...(q.states ?? [])];
    const [total, , ...ids] = await this.redis.historyList(this.key('tmp:', randomUUID()), ...args);
    const tasks = (await this.tasks(ids as string[])).filter((t): t is StoredTask => t !== undefined).map(record);
    return { tasks, total: Number(total), offset: q.offset, limit: q.limit };
  }

  private async refs(ids: readonly string[]): Promise<(TaskRef & { sentAt: number | null; updatedAt: number })[]> {
    return (await this.tasks(ids)).filter((t): t is StoredTask => t !== undefined).map((t) => ({ id: t.id, name: t.name, state: t.state, sentAt: t.sentAt, updatedAt: t.updatedAt }));
  }

  async get(id: string): Promise<TaskDetail | undefined> {
    const [task] = await this.tasks([id]);
    if (!task) return undefined;
    const [timeline, logs, children, group] = await Promise.all([
      this.redis.zrange(this.key('tl:', id), 0, -1),
      this.redis.zrange(this.key('log:', id), 0, -1),
      this.redis.zrange(this.key('i:parent:', id), 0, MAX_CHILDREN - 1),
      task.groupId === null ? Promise.resolve([]) : this.redis.zrange(this.key('i:group:', task.groupId), 0, MAX_GROUP),
    ]);
    const [related, kids, members] = await Promise.all([this.refs([task.parentId, task.rootId].filter((r): r is string => r !== null && r !== id)), this.refs(children), this.refs(group.filter((g) => g !== id).slice(0, MAX_GROUP))]);
    // The order SQLite gives: by sentAt (unknown first), then updatedAt.
    const bySent = (a: { sentAt: number | null; updatedAt: number }, b: typeof a) => (a.sentAt ?? -Infinity) - (b.sentAt ?? -Infinity) || a.updatedAt - b.updatedAt;
    const ref = (r: TaskRef & { sentAt: unknown; updatedAt: unknown }): TaskRef => ({ id: r.id, name: r.name, state: r.state });
    const find = (other: string | null) => related.find((r) => r.id === other);
    return {
      ...record(task),
      timeline: timeline.map((m) => unmember<TimelineEntry>(m)),
      logs: logs.map((m) => unmember<TaskLogLine>(m)),
      queueWaitMs: task.receivedAt !== null && task.startedAt !== null ? Math.max(0, task.startedAt - task.receivedAt) : null,
      relations: {
        parent: find(task.parentId) ? ref(find(task.parentId)!) : null,
        root: find(task.rootId) ? ref(find(task.rootId)!) : null,
        children: kids.sort(bySent).map(ref),
        group: members.sort(bySent).map(ref),
      },
    };
  }

  async throughput(since: number, bucketMs: number): Promise<ThroughputPoint[]> {
    const now = Date.now();
    const starts = Array.from({ length: bucketCount(since, bucketMs, now) }, (_, i) => since + i * bucketMs);
    const range = (s: number) => [s, `(${Math.min(s + bucketMs, now + 1)}`];
    const res = await this.redis.pipeline(starts.flatMap((s) => [['zcount', this.key('done:SUCCESS'), ...range(s)], ['zcount', this.key('done:FAILURE'), ...range(s)]])).exec();
    return starts.map((at, i) => ({ at, succeeded: Number(res?.[2 * i]?.[1] ?? 0), failed: Number(res?.[2 * i + 1]?.[1] ?? 0) }));
  }

  async stateCounts(): Promise<Partial<Record<TaskState, number>>> {
    const states = TASK_STATES;
    const res = await this.redis.pipeline(states.map((s) => ['zcard', this.key('i:state:', s)])).exec();
    const out: Partial<Mutable<Record<TaskState, number>>> = {};
    states.forEach((s, i) => {
      const n = Number(res?.[i]?.[1] ?? 0);
      if (n > 0) out[s] = n;
    });
    return out;
  }

  async failuresSince(since: number): Promise<number> {
    return this.redis.zcount(this.key('done:FAILURE'), since, '+inf');
  }

  async unfinished(limit: number): Promise<string[]> {
    return limit > 0 ? this.redis.zrange(this.key('i:open'), 0, limit - 1) : [];
  }

  async prune(policy: RetentionPolicy): Promise<number> {
    return this.serial(async () => {
      let removed = 0;
      const all = this.key('i:all');
      if (Number.isFinite(policy.maxAgeMs)) {
        const before = Date.now() - policy.maxAgeMs;
        for (;;) {
          const ids = await this.redis.zrangebyscore(all, '-inf', `(${before}`, 'LIMIT', 0, PRUNE_CHUNK);
          if (!ids.length) break;
          removed += await this.redis.historyPrune(this.prefix, String(before - 1), ...ids);
        }
      }
      for (;;) {
        const excess = Math.min(PRUNE_CHUNK, (await this.redis.zcard(all)) - Math.max(0, policy.maxTasks));
        if (!(excess > 0)) break;
        const oldest = await this.redis.zrange(all, 0, excess - 1, 'WITHSCORES');
        const ids = oldest.filter((_, i) => i % 2 === 0);
        if (!ids.length) break;
        removed += await this.redis.historyPrune(this.prefix, oldest.at(-1)!, ...ids);
      }
      return removed;
    });
  }

  async close(): Promise<void> {
    await this.serial(async () => undefined);
    await Promise.all([this.redis.quit().catch(() => this.redis.disconnect()), this.writer.quit().catch(() => this.writer.disconnect())]);
  }
}
