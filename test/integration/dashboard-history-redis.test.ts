import { describe, expect, inject, it } from 'vitest';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ev, historyConformance } from '../conformance/history-suite.js';

const dist = (file: string): Promise<unknown> => import(join(import.meta.dirname, '../../packages/worker/dist/dashboard/history', file));
const { RedisHistoryStore } = (await dist('redis-store.js')) as typeof import('../../packages/worker/src/dashboard/history/redis-store.js');
const { PRUNE_TASKS } = (await dist('redis-scripts.js')) as typeof import('../../packages/worker/src/dashboard/history/redis-scripts.js');
const { openHistory } = (await dist('open.js')) as typeof import('../../packages/worker/src/dashboard/history/open.js');

const base = inject('redisUrl');
let n = 0;
/** Each history gets its own key prefix: a fresh namespace on the shared server. */
const url = () => `${base}?keyPrefix=hist${process.pid}-${++n}:`;

historyConformance('redis', async () => {
  const u = url();
  return { open: () => RedisHistoryStore.open(u) };
});

describe('Redis history specifics', () => {
  it('is what openHistory opens for a redis:// URL, with keys under celeriac:dash: after the URL prefix', async () => {
    const u = url();
    const store = await openHistory(u, '/nonexistent');
    const raw = new Redis(base);
    try {
      expect(store.kind).toBe('redis');
      await store.ingest([ev('task-succeeded', 'k-1', 0, { logs: [{ at: 1, level: 'info', msg: 'm' }] })]);
      await store.list({ sort: 'name', order: 'asc', offset: 0, limit: 10, text: 'x', states: ['SUCCESS', 'FAILURE'] });
      const keys = await raw.keys(`hist${process.pid}-${n}:*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`hist${process.pid}-${n}:celeriac:dash:`))).toBe(true);
      // The list's scratch keys are gone once it answers.
      expect(keys.filter((k) => k.includes(':tmp:'))).toEqual([]);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('keeps both updates when two dashboards write the same task at once', async () => {
    const u = url();
    const [a, b] = await Promise.all([RedisHistoryStore.open(u), RedisHistoryStore.open(u)]);
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).ingest([ev('task-progress', 'shared', i, { step: i }), ev(i === 19 ? 'task-succeeded' : 'task-started', 'shared', i)])),
      );
      const d = (await a.get('shared'))!;
      expect(d.state).toBe('SUCCESS');
      expect(d.timeline).toHaveLength(40);
      expect((await b.list({ sort: 'updatedAt', order: 'desc', offset: 0, limit: 5, states: ['STARTED'] })).total).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('prune-tasks leaves a task another dashboard updated after it was picked', async () => {
    const u = url();
    const store = await RedisHistoryStore.open(u);
    const raw = new Redis(base);
    try {
      await store.ingest([ev('task-succeeded', 'fresh', 1000), ev('task-succeeded', 'stale', 0)]);
      const [fresh, stale] = [(await store.get('fresh'))!.updatedAt, (await store.get('stale'))!.updatedAt];
      expect(await raw.eval(PRUNE_TASKS, 0, store.prefix, String(fresh - 1), 'fresh', 'stale')).toBe(1);
      expect(await store.get('stale')).toBeUndefined();
      expect((await store.get('fresh'))!.updatedAt).toBe(fresh);
      expect((await store.list({ sort: 'name', order: 'asc', offset: 0, limit: 10 })).tasks.map((t) => t.id)).toEqual(['fresh']);
      expect(stale).toBeLessThan(fresh);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });
});
