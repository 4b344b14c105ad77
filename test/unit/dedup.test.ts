import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, ErrorCodes, isCeleriacError, type CeleriacApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { tempDir } from '../helpers/tmp.js';
import { memoryUrl, waitFor } from '../helpers/wait.js';

const dir = tempDir('celeriac-dedup-');
const apps: CeleriacApp[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ timeoutMs: 1000 });
  for (const a of apps.splice(0)) await a.close();
});
let n = 0;

/** Deduplicated and debounced sends (BullMQ's deduplication modes), on the memory and SQLite backends. */
describe.each(['memory', 'sqlite'] as const)('applyAsync(..., { deduplicate }) on %s', (kind) => {
  function world(options: { maxPayloadBytes?: number } = {}) {
    const broker = kind === 'memory' ? memoryUrl(`dedup-${++n}`) : `sqlite://${join(dir, `d${++n}.db`)}`;
    const app = createApp({ name: 'dedup', broker, ...options });
    apps.push(app);
    const runs: string[] = [];
    const work = app.task({ name: 'dedup.work' }, (label: string) => {
      runs.push(label);
      return label;
    });
    return { app, work, runs };
  }
  async function startWorker(app: CeleriacApp) {
    const w = new Worker(app, { logLevel: 'silent' });
    workers.push(w);
    await w.start();
  }

  it('first mode: a second send inside the window enqueues nothing and returns the first task', async () => {
    const { app, work, runs } = world();
    const first = await work.applyAsync(['a'], { deduplicate: { id: 'invoice:1', ttlMs: 60_000 } });
    const second = await work.applyAsync(['b'], { deduplicate: { id: 'invoice:1', ttlMs: 60_000 } });
    const other = await work.applyAsync(['c'], { deduplicate: { id: 'invoice:2', ttlMs: 60_000 } });
    expect(second.id).toBe(first.id);
    expect(other.id).not.toBe(first.id);
    expect(await (await app.transport()).length('celery')).toBe(2);
    await startWorker(app);
    expect(await second.get({ timeout: 5000 })).toBe('a');
    await other.get({ timeout: 5000 });
    expect(runs.sort()).toEqual(['a', 'c']);
  });

  it('first mode: once the window has passed, the same id sends again', async () => {
    const { work } = world();
    const first = await work.applyAsync(['a'], { deduplicate: { id: 'x', ttlMs: 50 } });
    const later = await waitFor(async () => {
      const r = await work.applyAsync(['b'], { deduplicate: { id: 'x', ttlMs: 50 } });
      return r.id !== first.id ? r : undefined;
    }, 'a send after the window');
    expect(later.id).not.toBe(first.id);
  });

  it('debounce mode: the last send within the window runs, after the window; the ones it replaced end REVOKED', async () => {
    const { app, work, runs } = world();
    await startWorker(app);
    const sent = [];
    for (const label of ['a', 'b', 'c']) sent.push(await work.applyAsync([label], { deduplicate: { id: 'search-index', ttlMs: 300, mode: 'debounce' } }));
    expect(new Set(sent.map((r) => r.id)).size).toBe(3);
    expect(await sent[2]!.get({ timeout: 5000 })).toBe('c');
    for (const replaced of sent.slice(0, 2)) {
      const err = await replaced.get({ timeout: 5000 }).catch((e: unknown) => e);
      expect((err as { excType?: string }).excType).toBe('TaskRevokedError');
    }
    expect(runs).toEqual(['c']);
  });

  it('a send that fails lets go of the key: the next send with the same id goes out', async () => {
    const { work } = world({ maxPayloadBytes: 2048 });
    const err = await work.applyAsync(['x'.repeat(5000)], { deduplicate: { id: 'big', ttlMs: 60_000 } }).catch((e: unknown) => e);
    expect(isCeleriacError(err, ErrorCodes.PAYLOAD_TOO_LARGE)).toBe(true);
    const next = await work.applyAsync(['small'], { deduplicate: { id: 'big', ttlMs: 60_000 } });
    const again = await work.applyAsync(['small'], { deduplicate: { id: 'big', ttlMs: 60_000 } });
    expect(again.id).toBe(next.id);
  });

  it('bad deduplicate options are named errors (ARGUMENT_INVALID)', async () => {
    const { work } = world();
    for (const bad of [{ id: '', ttlMs: 10 }, { id: 'x', ttlMs: 0 }, { id: 'x', ttlMs: 1.5 }, { id: 'x', ttlMs: 10, mode: 'last' }]) {
      const err = await work.applyAsync(['a'], { deduplicate: bad as never }).catch((e: unknown) => e);
      expect(isCeleriacError(err, ErrorCodes.ARGUMENT_INVALID), JSON.stringify(bad)).toBe(true);
      expect((err as Error).message).toMatch(/^deduplicate\./);
    }
  });
});
