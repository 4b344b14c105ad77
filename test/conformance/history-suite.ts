import { afterEach, describe, expect, it } from 'vitest';
import type { CeleryEvent } from '@celeriac/core/spi';
import type { HistoryStore, TaskQuery, TaskRecord, TaskSortKey } from '../../packages/worker/src/dashboard/model.js';

/** Ten minutes ago, so throughput, failuresSince and age-based retention see these tasks as recent. */
const T0 = Date.now() - 600_000;
/** A Celery event at `T0 + ms` (its timestamp in unix seconds, as workers send it). */
export function ev(type: string, uuid: string, ms: number, fields: Record<string, unknown> = {}, hostname = 'w1@host'): CeleryEvent {
  return { type, uuid, hostname, timestamp: (T0 + ms) / 1000, clock: 1, pid: 42, utcoffset: 0, ...fields };
}
const q = (over: Partial<TaskQuery> = {}): TaskQuery => ({ sort: 'updatedAt', order: 'desc', offset: 0, limit: 50, ...over });

/** The life of a task that ran on `worker`: sent, received, started, then succeeded or failed. */
function life(id: string, i: number, o: { name: string; worker: string; queue: string; fail?: boolean; parent?: string; root?: string; group?: string }): CeleryEvent[] {
  const t = i * 1000;
  const rel = { parent_id: o.parent ?? null, root_id: o.root ?? null };
  return [
    ev('task-sent', id, t, { name: o.name, args: `(${i},)`, kwargs: `{'k': ${i}}`, queue: o.queue, retries: 0, ...rel }, 'client@host'),
    ev('task-received', id, t + 10, { name: o.name, args: `(${i},)`, kwargs: `{'k': ${i}}`, retries: 0, queue: o.queue, group: o.group ?? null, ...rel }, o.worker),
    ev('task-started', id, t + 20, {}, o.worker),
    o.fail
      ? ev('task-failed', id, t + 20 + i, { exception: `ValueError('bad ${i}')`, traceback: 'Traceback ...' }, o.worker)
      : ev('task-succeeded', id, t + 20 + i, { result: `'ok-${i}'`, runtime: i / 1000 }, o.worker),
  ];
}

const NAMES = ['app.add', 'app.mul', 'other.send'] as const;
/** 30 tasks: names, workers, queues and outcomes spread so every filter keeps a different part. */
const seed = Array.from({ length: 30 }, (_, i) => ({
  id: `seed-${String(i).padStart(4, '0')}-${(i * 7919).toString(16)}`,
  name: NAMES[i % 3]!,
  worker: i % 2 ? 'w2@host' : 'w1@host',
  queue: i % 5 ? 'default' : 'urgent',
  fail: i % 4 === 0,
  i,
}));

function monotone(rows: readonly TaskRecord[], key: TaskSortKey, order: 'asc' | 'desc'): void {
  const values = rows.map((r) => r[key]).filter((v): v is string | number => v !== null);
  for (let k = 1; k < values.length; k++) {
    const [a, b] = [values[k - 1]!, values[k]!];
    if (order === 'asc') expect(a <= b, `${key} asc: ${a} then ${b}`).toBe(true);
    else expect(a >= b, `${key} desc: ${a} then ${b}`).toBe(true);
  }
}

/**
 * The HistoryStore contract: every store runs it. `setup` gives a fresh, empty history;
 * its `open` may be called again to reopen the same one (the restart case).
 */
export function historyConformance(name: string, setup: () => Promise<{ open: () => Promise<HistoryStore> }>): void {
  describe(`HistoryStore conformance: ${name}`, () => {
    const opened: HistoryStore[] = [];
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });
    const fresh = async () => {
      const { open } = await setup();
      const store = await open();
      opened.push(store);
      return { store, reopen: async () => (opened.push(await open()), opened.at(-1)!) };
    };
    const seeded = async () => {
      const h = await fresh();
      await h.store.ingest(seed.flatMap((s) => life(s.id, s.i, s)));
      return h;
    };

    it('records a task life in order, with its timeline, wait and runtime', async () => {
      const { store } = await fresh();
      await store.ingest(life('life-1', 1, { name: 'app.add', worker: 'w1@host', queue: 'default' }));
      const d = (await store.get('life-1'))!;
      expect(d).toMatchObject({ id: 'life-1', name: 'app.add', state: 'SUCCESS', args: '(1,)', kwargs: "{'k': 1}", result: "'ok-1'", worker: 'w1@host', queue: 'default', runtime: 0.001 });
      expect([d.sentAt, d.receivedAt, d.startedAt, d.endedAt]).toEqual([T0 + 1000, T0 + 1010, T0 + 1020, T0 + 1021]);
      expect(d.queueWaitMs).toBe(10);
      expect(d.timeline.map((e) => e.type)).toEqual(['task-sent', 'task-received', 'task-started', 'task-succeeded']);
      expect(d.timeline[0]).toMatchObject({ at: T0 + 1000, hostname: 'client@host', fields: { name: 'app.add', queue: 'default' } });
      expect(d.timeline[2]!.fields).toEqual({ pid: 42 });
      expect(await store.get('nope')).toBeUndefined();
    });

    it('keeps a final state when earlier events arrive late, and fills what they know', async () => {
      const { store } = await fresh();
      const [sent, received, started, succeeded] = life('late-1', 2, { name: 'app.mul', worker: 'w2@host', queue: 'q' });
      await store.ingest([succeeded!]);
      await store.ingest([started!, received!]);
      await store.ingest([sent!]);
      const d = (await store.get('late-1'))!;
      expect(d).toMatchObject({ state: 'SUCCESS', name: 'app.mul', args: '(2,)', worker: 'w2@host', queue: 'q', sentAt: T0 + 2000, endedAt: T0 + 2022 });
      expect(d.timeline.map((e) => e.type)).toEqual(['task-sent', 'task-received', 'task-started', 'task-succeeded']);
      await store.ingest([ev('task-failed', 'late-2', 50), ev('task-received', 'late-2', 10, { name: 'x' })]);
      expect(await store.get('late-2')).toMatchObject({ state: 'FAILURE', name: 'x' });
    });

    it('follows a retry cycle, and ignores a stale retry that arrives after the next delivery', async () => {
      const { store } = await fresh();
      await store.ingest([ev('task-received', 'r-1', 0, { name: 'n', retries: 0 }), ev('task-started', 'r-1', 10), ev('task-retried', 'r-1', 20, { exception: "IOError('x')" })]);
      expect(await store.get('r-1')).toMatchObject({ state: 'RETRY', exception: "IOError('x')" });
      await store.ingest([ev('task-received', 'r-1', 1000, { name: 'n', retries: 1 }), ev('task-started', 'r-1', 1010), ev('task-succeeded', 'r-1', 1020, { result: '3' })]);
      expect(await store.get('r-1')).toMatchObject({ state: 'SUCCESS', retries: 1, result: '3', receivedAt: T0 + 1000 });
      await store.ingest([ev('task-received', 'r-2', 1000, { name: 'n', retries: 1 }), ev('task-retried', 'r-2', 20), ev('task-received', 'r-2', 0, { retries: 0 })]);
      expect(await store.get('r-2')).toMatchObject({ state: 'RECEIVED', retries: 1, receivedAt: T0 + 1000 });
    });

    it('never erases a known value with null, and ignores events about no task', async () => {
      const { store } = await fresh();
      await store.ingest([
        ev('task-received', 'n-1', 0, { name: 'keep', args: '(1,)', queue: 'q1' }),
        ev('task-succeeded', 'n-1', 10, { name: null, args: null, result: null, runtime: 0.5 }),
        ev('worker-heartbeat', 'n-1', 20),
        { type: 'task-sent', hostname: 'h', timestamp: T0 / 1000 },
      ]);
      expect(await store.get('n-1')).toMatchObject({ state: 'SUCCESS', name: 'keep', args: '(1,)', queue: 'q1', result: null, runtime: 0.5 });
      expect((await store.list(q())).total).toBe(1);
    });

    it('keeps the log lines final events carry, the latest ones when there are too many', async () => {
      const { store } = await fresh();
      const lines = Array.from({ length: 250 }, (_, i) => ({ at: T0 + i, level: i % 2 ? 'info' : 'warn', msg: `line ${i}` }));
      await store.ingest([ev('task-retried', 'log-1', 300, { logs: lines.slice(0, 100) }), ev('task-succeeded', 'log-1', 400, { logs: lines.slice(100) })]);
      const d = (await store.get('log-1'))!;
      expect(d.logs).toHaveLength(200);
      expect(d.logs[0]).toEqual({ at: T0 + 50, level: 'warn', msg: 'line 50' });
      expect(d.logs.at(-1)).toEqual({ at: T0 + 249, level: 'info', msg: 'line 249' });
      expect(d.timeline.every((e) => !('logs' in e.fields))).toBe(true);
      await store.ingest(Array.from({ length: 70 }, (_, i) => ev('task-progress', 'log-1', 500 + i, { n: i })));
      const t = (await store.get('log-1'))!.timeline;
      expect(t).toHaveLength(50);
      expect(t.at(-1)).toMatchObject({ type: 'task-progress', fields: { n: 69 } });
    });

    it('narrows the list with each filter, and with them combined', async () => {
      const { store } = await seeded();
      const count = async (over: Partial<TaskQuery>, expected: (s: (typeof seed)[number]) => boolean) => {
        const page = await store.list(q({ ...over, limit: 500 }));
        const want = seed.filter(expected).map((s) => s.id).sort();
        expect(page.tasks.map((t) => t.id).sort(), JSON.stringify(over)).toEqual(want);
        expect(page.total).toBe(want.length);
        return page;
      };
      expect((await store.list(q())).total).toBe(30);
      await count({ id: seed[7]!.id.slice(0, 9) }, (s) => s.id.startsWith(seed[7]!.id.slice(0, 9)));
      await count({ id: seed[7]!.id }, (s) => s.id === seed[7]!.id);
      await count({ name: 'app.add' }, (s) => s.name === 'app.add');
      await count({ name: 'app.*' }, (s) => s.name.startsWith('app.'));
      await count({ states: ['FAILURE'] }, (s) => s.fail);
      await count({ states: ['FAILURE', 'SUCCESS'] }, () => true);
      await count({ states: ['STARTED'] }, () => false);
      await count({ worker: 'w2@host' }, (s) => s.i % 2 === 1);
      await count({ queue: 'urgent' }, (s) => s.i % 5 === 0);
      // updatedAt is the final event's time: T0 + i*1000 + 20 + i.
      await count({ from: T0 + 10_000, to: T0 + 20_000 }, (s) => s.i >= 10 && s.i < 20);
      await count({ text: 'OK-1' }, (s) => !s.fail && String(s.i).startsWith('1'));
      await count({ text: "'k': 2" }, (s) => String(s.i).startsWith('2'));
      await count({ text: 'valueerror' }, (s) => s.fail);
      await count({ name: 'app.*', states: ['SUCCESS'], worker: 'w1@host', queue: 'default' }, (s) => s.name.startsWith('app.') && !s.fail && s.i % 2 === 0 && s.i % 5 !== 0);
      await count({ text: '%' }, () => false);
    });

    it('sorts by every key, both ways', async () => {
      const { store } = await seeded();
      for (const sort of ['updatedAt', 'sentAt', 'receivedAt', 'startedAt', 'endedAt', 'name', 'state', 'runtime', 'worker', 'queue'] as const) {
        for (const order of ['asc', 'desc'] as const) {
          const page = await store.list(q({ sort, order, limit: 500 }));
          expect(page.tasks).toHaveLength(30);
          monotone(page.tasks, sort, order);
        }
      }
      const newest = await store.list(q({ limit: 1 }));
      expect(newest.tasks[0]!.id).toBe(seed[29]!.id);
      const oldest = await store.list(q({ order: 'asc', limit: 1 }));
      expect(oldest.tasks[0]!.id).toBe(seed[0]!.id);
      monotone((await store.list(q({ sort: 'runtime', states: ['SUCCESS'], limit: 500 }))).tasks, 'runtime', 'desc');
      // Text keys under filters and a text search, and a task with no name (first ascending, last descending).
      await store.ingest([ev('task-started', 'nameless', 40_000, {}, 'w1@host')]);
      for (const sort of ['name', 'worker', 'queue', 'state'] as const) {
        const filtered = await store.list(q({ sort, order: 'asc', worker: 'w1@host', text: 'ok', limit: 500 }));
        expect(filtered.total).toBe(seed.filter((s) => s.i % 2 === 0 && !s.fail).length);
        monotone(filtered.tasks, sort, 'asc');
      }
      const asc = await store.list(q({ sort: 'name', order: 'asc', limit: 500 }));
      expect(asc.tasks[0]!.id).toBe('nameless');
      const desc = await store.list(q({ sort: 'name', order: 'desc', worker: 'w1@host', limit: 500 }));
      expect(desc.tasks.at(-1)!.id).toBe('nameless');
      expect(desc.total).toBe(16);
      // Within one value, the newest first (descending) as with every sort key.
      const adds = (await store.list(q({ sort: 'name', order: 'desc', name: 'app.add', limit: 500 }))).tasks.map((t) => t.updatedAt);
      expect(adds).toEqual([...adds].sort((a, b) => b - a));
    });

    it('pages through a list without gaps or repeats, with the same total on every page', async () => {
      const { store } = await seeded();
      const queries = [
        q(),
        q({ sort: 'name', order: 'asc' }),
        q({ worker: 'w1@host', sort: 'runtime' }),
        q({ text: 'ok' }),
        q({ states: ['SUCCESS', 'FAILURE'] }),
        q({ states: ['SUCCESS', 'FAILURE'], order: 'asc', from: T0 + 3000, to: T0 + 25_000 }),
        q({ name: 'app.*', order: 'asc' }),
        q({ name: 'app.*', states: ['SUCCESS', 'FAILURE'] }),
      ];
      for (const query of queries) {
        const all = await store.list({ ...query, limit: 500 });
        const seen: string[] = [];
        for (let offset = 0; offset < all.total + 7; offset += 7) {
          const page = await store.list({ ...query, offset, limit: 7 });
          expect(page.total).toBe(all.total);
          expect(page).toMatchObject({ offset, limit: 7 });
          seen.push(...page.tasks.map((t) => t.id));
        }
        expect(seen).toEqual(all.tasks.map((t) => t.id));
      }
      const beyond = await store.list(q({ offset: 1000 }));
      expect(beyond).toMatchObject({ tasks: [], total: 30 });
    });

    it('pages through tasks updated in the same millisecond without gaps or repeats', async () => {
      const { store } = await fresh();
      await store.ingest(Array.from({ length: 12 }, (_, i) => ev(i % 3 ? 'task-succeeded' : 'task-failed', `tie-${i.toString(16)}`, i < 8 ? 500 : 900)));
      for (const query of [q({ states: ['SUCCESS', 'FAILURE'] }), q({ states: ['SUCCESS', 'FAILURE'], order: 'asc' }), q()]) {
        const all = await store.list({ ...query, limit: 500 });
        expect(all.total).toBe(12);
        const seen: string[] = [];
        for (let offset = 0; offset < 12; offset += 5) seen.push(...(await store.list({ ...query, offset, limit: 5 })).tasks.map((t) => t.id));
        expect(seen).toEqual(all.tasks.map((t) => t.id));
        expect(new Set(seen).size).toBe(12);
      }
    });

    it('links parents, roots, children and group members', async () => {
      const { store } = await fresh();
      const o = { name: 'c', worker: 'w1@host', queue: 'q' };
      await store.ingest([
        ...life('root-1', 1, o),
        ...life('kid-1', 2, { ...o, parent: 'root-1', root: 'root-1', group: 'g-1' }),
        ...life('kid-2', 3, { ...o, parent: 'root-1', root: 'root-1', group: 'g-1' }),
        ...life('grandkid', 4, { ...o, parent: 'kid-1', root: 'root-1' }),
      ]);
      const root = (await store.get('root-1'))!;
      expect(root.relations).toEqual({ parent: null, root: null, children: [{ id: 'kid-1', name: 'c', state: 'SUCCESS' }, { id: 'kid-2', name: 'c', state: 'SUCCESS' }], group: [] });
      const kid = (await store.get('kid-1'))!;
      expect(kid.relations).toEqual({ parent: { id: 'root-1', name: 'c', state: 'SUCCESS' }, root: { id: 'root-1', name: 'c', state: 'SUCCESS' }, children: [{ id: 'grandkid', name: 'c', state: 'SUCCESS' }], group: [{ id: 'kid-2', name: 'c', state: 'SUCCESS' }] });
      expect(kid.groupId).toBe('g-1');
      expect((await store.get('grandkid'))!.relations.root).toEqual({ id: 'root-1', name: 'c', state: 'SUCCESS' });
    });

    it('merges result-backend records: a final state settles a task, a non-final one only seeds', async () => {
      const { store } = await fresh();
      await store.ingest([ev('task-received', 'b-1', 0, { name: 'n' }), ev('task-started', 'b-1', 10)]);
      await store.mergeResult({ id: 'b-1', status: 'SUCCESS', result: '7', traceback: null, endedAt: T0 + 500 });
      expect(await store.get('b-1')).toMatchObject({ state: 'SUCCESS', result: '7', endedAt: T0 + 500, name: 'n' });
      await store.mergeResult({ id: 'b-2', status: 'STARTED', result: null, traceback: null, endedAt: null, name: 'm', worker: 'w9' });
      expect(await store.get('b-2')).toMatchObject({ state: 'STARTED', name: 'm', worker: 'w9' });
      await store.ingest([ev('task-received', 'b-3', 0, { name: 'n' })]);
      await store.mergeResult({ id: 'b-3', status: 'RETRY', result: "IOError('x')", traceback: 'tb', endedAt: null });
      expect(await store.get('b-3')).toMatchObject({ state: 'RECEIVED', exception: "IOError('x')" });
      await store.mergeResult({ id: 'b-3', status: 'PROGRESS', result: "{'done': 3}", traceback: null, endedAt: null });
      expect(await store.get('b-3')).toMatchObject({ state: 'RECEIVED', result: "{'done': 3}" });
      await store.mergeResult({ id: 'b-3', status: 'FAILURE', result: "ValueError('no')", traceback: 'tb2', endedAt: T0 + 900 });
      expect(await store.get('b-3')).toMatchObject({ state: 'FAILURE', exception: "ValueError('no')", traceback: 'tb2' });
      await store.mergeResult({ id: 'b-4', status: 'REVOKED', result: "TaskRevokedError('revoked')", traceback: null, endedAt: T0 + 100 });
      expect(await store.get('b-4')).toMatchObject({ state: 'REVOKED', exception: "TaskRevokedError('revoked')", result: null, endedAt: T0 + 100 });
      expect(await store.unfinished(10)).toEqual(['b-2']);
    });

    it('counts states, failures and throughput, and lists unfinished tasks oldest first', async () => {
      const { store } = await seeded();
      await store.ingest([ev('task-received', 'open-2', 5_000), ev('task-started', 'open-1', 1_000), ev('task-revoked', 'rv', 100)]);
      const failed = seed.filter((s) => s.fail).length;
      expect(await store.stateCounts()).toEqual({ SUCCESS: 30 - failed, FAILURE: failed, RECEIVED: 1, STARTED: 1, REVOKED: 1 });
      expect(await store.failuresSince(T0)).toBe(failed);
      expect(await store.failuresSince(T0 + 20_000)).toBe(seed.filter((s) => s.fail && s.i >= 20).length);
      expect(await store.unfinished(10)).toEqual(['open-1', 'open-2']);
      expect(await store.unfinished(1)).toEqual(['open-1']);
      const points = await store.throughput(T0, 10_000);
      expect(points.length).toBeGreaterThanOrEqual(60);
      expect(points[0]).toEqual({ at: T0, succeeded: seed.filter((s) => s.i < 10 && !s.fail).length, failed: seed.filter((s) => s.i < 10 && s.fail).length });
      expect(points.reduce((n, p) => n + p.succeeded + p.failed, 0)).toBe(30);
      expect(points.every((p, k) => p.at === T0 + k * 10_000)).toBe(true);
      await expect(store.throughput(T0, 0)).rejects.toMatchObject({ code: 'ARGUMENT_INVALID' });
    });

    it('prunes the oldest tasks by count and by age, with their timelines and logs', async () => {
      const { store } = await seeded();
      const day = 86_400_000;
      expect(await store.prune({ maxTasks: 20, maxAgeMs: day })).toBe(10);
      const page = await store.list(q({ order: 'asc', limit: 500 }));
      expect(page.total).toBe(20);
      expect(page.tasks[0]!.id).toBe(seed[10]!.id);
      expect(await store.get(seed[9]!.id)).toBeUndefined();
      expect(await store.stateCounts()).toEqual({ SUCCESS: seed.filter((s) => s.i >= 10 && !s.fail).length, FAILURE: seed.filter((s) => s.i >= 10 && s.fail).length });
      await store.ingest([ev('task-succeeded', 'ancient', -3 * day, { logs: [{ at: 1, level: 'info', msg: 'old' }] })]);
      expect(await store.prune({ maxTasks: 1000, maxAgeMs: day })).toBe(1);
      expect(await store.get('ancient')).toBeUndefined();
      // A task re-created after a prune starts afresh: no timeline or logs left behind.
      await store.ingest([ev('task-progress', 'ancient', 0)]);
      expect(await store.get('ancient')).toMatchObject({ state: 'PENDING', logs: [], timeline: [{ type: 'task-progress' }] });
      expect(await store.prune({ maxTasks: 1000, maxAgeMs: day })).toBe(0);
      expect((await store.list(q({ name: 'app.*' }))).total).toBe(seed.filter((s) => s.i >= 10 && s.name.startsWith('app.')).length);
    });

    it('survives a restart: a reopened history has every task, timeline and log', async () => {
      const { store, reopen } = await seeded();
      await store.ingest([ev('task-succeeded', 'persist', 0, { logs: [{ at: T0, level: 'info', msg: 'hello' }] })]);
      const before = await store.get(seed[3]!.id);
      const list = await store.list(q({ name: 'app.*', sort: 'runtime' }));
      await store.close();
      const again = await reopen();
      expect(await again.get(seed[3]!.id)).toEqual(before);
      expect(await again.list(q({ name: 'app.*', sort: 'runtime' }))).toEqual(list);
      expect((await again.get('persist'))!.logs).toEqual([{ at: T0, level: 'info', msg: 'hello' }]);
    });

    it('applies a batch of 1,200 tasks whole', async () => {
      const { store } = await fresh();
      await store.ingest(Array.from({ length: 1200 }, (_, i) => life(`big-${i}`, i, { name: `n${i % 3}`, worker: 'w', queue: 'q' })).flat());
      expect(await store.stateCounts()).toEqual({ SUCCESS: 1200 });
      expect((await store.list(q({ name: 'n1', offset: 390 }))).tasks).toHaveLength(10);
      expect((await store.get('big-1199'))!.timeline).toHaveLength(4);
    });

    it('serves concurrent ingests and reads consistently', async () => {
      const { store } = await fresh();
      const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 10 }, (_, k) => life(`cc-${b}-${k}`, b * 10 + k, { name: 'c', worker: 'w', queue: 'q' })).flat());
      const reads: Promise<unknown>[] = [];
      await Promise.all(batches.map(async (batch) => (reads.push(store.list(q({ states: ['SUCCESS'] }))), store.ingest(batch))));
      await Promise.all(reads);
      expect((await store.list(q({ states: ['SUCCESS'] }))).total).toBe(200);
      expect(await store.stateCounts()).toEqual({ SUCCESS: 200 });
    });
  });
}
