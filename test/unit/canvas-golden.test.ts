import { describe, expect, it } from 'vitest';
import { chain, chord, createApp, group, type CeleriacApp, type Signature, type WireMessage } from '@celeriac/core/spi';
import { loadFixture } from '../helpers/fixtures.js';
import { memoryUrl, waitFor } from '../helpers/wait.js';

interface FixtureMessage {
  message: { headers: Record<string, unknown>; body: [unknown[], Record<string, unknown>, Record<string, unknown>] };
}

/**
 * A message reduced to what Celery's encoding decides: task, args, group
 * membership and the embedded canvas, with every id replaced by the order in
 * which it first appears (so "the same id in two places" is still checked)
 * and the per-client fields (reply_to, origin, root/parent ids) left out.
 */
function shape(messages: { headers: Record<string, unknown>; body: unknown }[]): unknown[] {
  const ids = new Map<string, string>();
  const idOf = (v: string): string => {
    if (!ids.has(v)) ids.set(v, `id${ids.size}`);
    return ids.get(v)!;
  };
  const walk = (v: unknown, key = ''): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        if (['reply_to', 'root_id', 'parent_id'].includes(k)) continue;
        out[k] = walk((v as Record<string, unknown>)[k], k);
      }
      return out;
    }
    return typeof v === 'string' && ['task_id', 'group_id', 'group', 'id'].includes(key) ? idOf(v) : v;
  };
  const sorted = [...messages].sort((a, b) => JSON.stringify([a.headers.task, (a.body as unknown[])[0]]).localeCompare(JSON.stringify([b.headers.task, (b.body as unknown[])[0]])));
  return sorted.map((m) => walk({ task: m.headers.task, group: m.headers.group, group_index: m.headers.group_index, body: m.body }));
}

async function sent(build: (app: CeleriacApp) => Signature<[], unknown> | Signature<never, unknown>, count: number): Promise<unknown[]> {
  const app = createApp({ broker: memoryUrl('canvas-golden') });
  const got: WireMessage[] = [];
  try {
    const transport = await app.transport();
    await app.send(build(app) as Signature<[], unknown>);
    await transport.consume(['celery'], (d) => {
      got.push(d.message);
      void d.ack();
    }, { prefetch: 1000 });
    await waitFor(() => got.length === count, `${count} messages`);
    return shape(got.map((w) => ({ headers: w.headers, body: JSON.parse(w.body) as unknown })));
  } finally {
    await app.close();
  }
}

const expected = (name: string): unknown[] => shape((loadFixture(`redis/${name}.json`).decoded as FixtureMessage[]).map((d) => d.message));

describe('nested canvases are encoded exactly as Celery 5.2.6 encodes them (captured fixtures)', () => {
  const tasks = (app: CeleriacApp) => ({
    add: app.declareTask<[number, number], number>('tasks.add'),
    mul: app.declareTask<[number, number], number>('tasks.mul'),
    xsum: app.declareTask<[number[]], number>('tasks.xsum'),
  });

  const cases: [string, number, (app: CeleriacApp) => Signature<[], unknown>][] = [
    ['canvas-chain-group-then-tasks', 3, (app) => { const { add, mul, xsum } = tasks(app); return chain(group([0, 1, 2].map((i) => add.s(i, i))), xsum.s(), mul.s(2)); }],
    ['canvas-chain-task-group-task', 1, (app) => { const { add, mul, xsum } = tasks(app); return chain(add.s(1, 1), group([1, 2, 3].map((i) => mul.s(i))), xsum.s()); }],
    ['canvas-chord-body-chain', 3, (app) => { const { add, xsum } = tasks(app); return chord([0, 1, 2].map((i) => add.s(i, i)), xsum.s().pipe(add.s(90))); }],
    ['canvas-chain-group-chord', 2, (app) => { const { add, xsum } = tasks(app); return chain(group(add.s(1, 1), add.s(2, 2)), chord([xsum.s(), xsum.s()], xsum.s())); }],
    ['canvas-chord-of-chains', 2, (app) => { const { add, mul, xsum } = tasks(app); return chord([chain(add.s(1, 1), mul.s(3)), chain(add.s(2, 2), mul.s(3))], xsum.s()); }],
    ['canvas-group-of-chains', 2, (app) => { const { add, mul } = tasks(app); return group([1, 2].map((i) => chain(add.s(i, i), mul.s(2 * i)))); }],
    ['canvas-immutable-chain', 1, (app) => { const { add } = tasks(app); return chain(add.si(1, 1), add.si(2, 2)); }],
  ];
  for (const [name, count, build] of cases) {
    it(name, async () => {
      expect(await sent(build, count)).toEqual(expected(name));
    });
  }
});
