import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isCeleriacError } from '@celeriac/core/spi';
import { ev, historyConformance } from '../conformance/history-suite.js';
import { tempDir } from '../helpers/tmp.js';

type Dist<T> = T;
const dist = (file: string): Promise<unknown> => import(join(import.meta.dirname, '../../packages/worker/dist/dashboard/history', file));
const { SqliteHistoryStore } = (await dist('sqlite-store.js')) as Dist<typeof import('../../packages/worker/src/dashboard/history/sqlite-store.js')>;
const { parseTaskQuery } = (await dist('query.js')) as Dist<typeof import('../../packages/worker/src/dashboard/history/query.js')>;
const { eventToPatch, mergeTask, stateWins } = (await dist('ingest.js')) as Dist<typeof import('../../packages/worker/src/dashboard/history/ingest.js')>;
const { openHistory } = (await dist('open.js')) as Dist<typeof import('../../packages/worker/src/dashboard/history/open.js')>;

const dir = tempDir('celeriac-history-');
let n = 0;
historyConformance('sqlite', async () => {
  const path = join(dir, `h${++n}.db`);
  return { open: () => SqliteHistoryStore.open(path) };
});

describe('ingest: events onto task records', () => {
  it('maps each task event to a state, its time in ms and its fields, and skips other events', () => {
    const p = eventToPatch(ev('task-received', 'a', 0, { name: 'n', args: '(1,)', queue: 'q', group: 'g', retries: 2 }))!;
    expect(p).toMatchObject({ id: 'a', state: 'RECEIVED', set: { name: 'n', args: '(1,)', queue: 'q', groupId: 'g', retries: 2, worker: 'w1@host' } });
    expect(p.at).toBe(p.set.receivedAt);
    expect(eventToPatch(ev('task-sent', 'a', 0, {}, 'client'))!.set).not.toHaveProperty('worker');
    expect(eventToPatch(ev('task-rejected', 'a', 0, { requeue: true }))!.state).toBeNull();
    expect(eventToPatch(ev('task-rejected', 'a', 0, { requeue: false }))!.state).toBe('REJECTED');
    expect(eventToPatch(ev('worker-online', 'a', 0))).toBeUndefined();
    expect(eventToPatch(ev('task-succeeded', '', 0))).toBeUndefined();
    expect(eventToPatch(ev('task-succeeded', 'a', 0, { result: [1, 2] }))!.set.result).toBe('[1, 2]');
  });

  it('orders states by precedence: final states win, RETRY goes by time', () => {
    const at = (state: Parameters<typeof stateWins>[0]['state'], stateAt = 100) => ({ state, stateAt });
    expect(stateWins(at('SUCCESS'), 'RECEIVED', 200)).toBe(false);
    expect(stateWins(at('SUCCESS'), 'FAILURE', 200)).toBe(false);
    expect(stateWins(at('FAILURE'), 'SUCCESS', 50)).toBe(true);
    expect(stateWins(at('STARTED'), 'RECEIVED', 200)).toBe(false);
    expect(stateWins(at('SENT'), 'STARTED', 50)).toBe(true);
    expect(stateWins(at('RETRY'), 'RECEIVED', 200)).toBe(true);
    expect(stateWins(at('RETRY'), 'RECEIVED', 50)).toBe(false);
    expect(stateWins(at('STARTED'), 'RETRY', 200)).toBe(true);
    expect(stateWins(at('RETRY'), 'REVOKED', 50)).toBe(true);
  });

  it('merges without erasing, and lets a losing event only fill gaps', () => {
    const first = mergeTask(undefined, eventToPatch(ev('task-succeeded', 'a', 100, { result: '1' }, 'w9'))!);
    const late = mergeTask(first, eventToPatch(ev('task-received', 'a', 0, { name: 'n' }, 'w1'))!);
    expect(late).toMatchObject({ state: 'SUCCESS', name: 'n', worker: 'w9', result: '1' });
    expect(late.updatedAt).toBe(first.updatedAt);
  });
});

describe('parseTaskQuery', () => {
  const parse = (qs: string) => parseTaskQuery(new URLSearchParams(qs));
  const invalid = (qs: string, param: string) => {
    try {
      parse(qs);
    } catch (err) {
      expect(isCeleriacError(err, ErrorCodes.QUERY_INVALID), String(err)).toBe(true);
      expect((err as { details: unknown }).details).toEqual({ param });
      return;
    }
    throw new Error(`${qs} was accepted`);
  };

  it('defaults to the newest 50', () => {
    expect(parse('')).toEqual({ sort: 'updatedAt', order: 'desc', offset: 0, limit: 50 });
    expect(parse('state=&name=&other=1')).toEqual({ sort: 'updatedAt', order: 'desc', offset: 0, limit: 50 });
  });

  it('reads every parameter', () => {
    expect(parse('id=abcd&name=tasks.*&state=success,FAILURE&state=retry&worker=w1&queue=q&from=2026-01-01T00:00:00Z&to=1767312000000&text=bad&sort=runtime&order=asc&offset=100&limit=500')).toEqual({
      id: 'abcd', name: 'tasks.*', states: ['SUCCESS', 'FAILURE', 'RETRY'], worker: 'w1', queue: 'q', from: Date.UTC(2026, 0, 1), to: 1767312000000, text: 'bad', sort: 'runtime', order: 'asc', offset: 100, limit: 500,
    });
    expect(parse('from=2026-01-01').from).toBe(Date.UTC(2026, 0, 1));
    expect(parse('from=2026-01-01T01:00:00+01:00').from).toBe(Date.UTC(2026, 0, 1));
    expect(parse('from=2026-01-01T12:30').from).toBe(Date.UTC(2026, 0, 1, 12, 30));
    expect(parse('limit=1').limit).toBe(1);
  });

  it('names the parameter it cannot use', () => {
    invalid('state=DONE', 'state');
    invalid('state=SUCCESS,,nope', 'state');
    invalid('sort=color', 'sort');
    invalid('order=up', 'order');
    invalid('from=yesterday', 'from');
    invalid('to=2026-13-45T99:00:00Z', 'to');
    invalid('from=12.5', 'from');
    invalid('from=2026-02-01&to=2026-01-01', 'from');
    invalid('limit=0', 'limit');
    invalid('limit=501', 'limit');
    invalid('limit=ten', 'limit');
    invalid('offset=-1', 'offset');
    invalid('offset=1.5', 'offset');
    invalid('id=abc', 'id');
    invalid('name=a*b', 'name');
    invalid('worker=a&worker=b', 'worker');
    invalid(`text=${'x'.repeat(201)}`, 'text');
  });
});

describe('openHistory', () => {
  it('opens SQLite for no URL, a path or a sqlite:// URL, relative to the directory given', async () => {
    for (const [url, file] of [
      [undefined, join(dir, 'celeriac-dashboard.db')],
      ['plain.db', join(dir, 'plain.db')],
      ['sqlite://rel/x.db', join(dir, 'rel/x.db')],
      [`sqlite://${join(dir, 'abs.db')}`, join(dir, 'abs.db')],
    ] as const) {
      const store = await openHistory(url, dir);
      expect(store.kind).toBe('sqlite');
      expect((store as unknown as { path: string }).path).toBe(file);
      await store.close();
    }
  });

  it('refuses other schemes with URL_INVALID naming the accepted forms', async () => {
    await expect(openHistory('mysql://u:secret@h/db', dir)).rejects.toSatisfy((err: Error) => isCeleriacError(err, ErrorCodes.URL_INVALID) && /sqlite:\/\/\//.test(err.message) && /redis:\/\//.test(err.message) && !err.message.includes('secret'));
    await expect(openHistory('sqlite://', dir)).rejects.toSatisfy((err: Error) => isCeleriacError(err, ErrorCodes.URL_INVALID));
  });
});
