import { afterEach, describe, expect, it } from 'vitest';
import { chain, chord, chunks, createApp, ErrorCodes, group, xmap, xstarmap, GroupResult, TaskError, type CeleriacApp, type TaskContext } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { waitFor } from '../helpers/wait.js';

/** Canvas behaviour through the real worker loop, on any broker/backend URL (one fresh namespace per call). */
export function canvasSuite(name: string, url: () => string | { broker: string; backend: string }): void {
  describe(`canvas on ${name}`, () => {
    const apps: CeleriacApp[] = [];
    const workers: Worker[] = [];
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.stop({ timeoutMs: 1000 });
      for (const a of apps.splice(0)) await a.close();
    });

    async function setup() {
      const where = url();
      const app = createApp(typeof where === 'string' ? { broker: where } : where);
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
        /** Retries (10 ms apart) until its `succeedOn`-th attempt, then returns its input. */
        flaky: app.task({ name: 'tasks.flaky_step', maxRetries: 5 }, function (this: TaskContext, x: number, succeedOn: number) {
          if (this.retries + 1 < succeedOn) this.retry({ countdown: 10 });
          return x;
        }),
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

    it("a failing step stops the chain, its failure is the chain's result, and the step's errbacks run", async () => {
      const { app, add, broken, mul, onError, errbacks } = await setup();
      const r = await app.send(chain(add.s(1, 1), broken.s().set({ link_error: [onError.s('broken')] }), mul.s(2)));
      const err = (await r.get({ timeout: 10_000 }).catch((e: unknown) => e)) as TaskError;
      expect(err).toBeInstanceOf(TaskError);
      expect(err.excType).toBe('Exception');
      expect(err.excMessage).toBe('failed');
      await waitFor(() => errbacks.length === 1, 'the failed step errback');
      expect(errbacks[0]![1]).toBe('broken');
    }, 15_000);

    it('nesting: groups and chords inside chains, chord bodies that are chains, chords and groups of chains', async () => {
      const { app, add, mul, xsum } = await setup();
      const get = async (sig: Parameters<typeof app.send>[0]) => (await app.send(sig)).get({ timeout: 15_000 });
      // add(1,1)=2 → group mul(2,1), mul(2,2), mul(2,3) → xsum = 12
      expect(await get(chain(add.s(1, 1), group(mul.s(1), mul.s(2), mul.s(3)), xsum.s()))).toBe(12);
      // group then tasks: a chord whose body is the chain xsum | mul(2): (0+2+4)*2 = 12
      expect(await get(chain(group(add.s(0, 0), add.s(1, 1), add.s(2, 2)), xsum.s(), mul.s(2)))).toBe(12);
      // a chord whose body is a chain: (0+2+4) + 90 = 96
      expect(await get(chord([add.s(0, 0), add.s(1, 1), add.s(2, 2)], xsum.s().pipe(add.s(90))))).toBe(96);
      // a chord of chains: (1+1)*3 + (2+2)*3 = 18
      expect(await get(chord([chain(add.s(1, 1), mul.s(3)), chain(add.s(2, 2), mul.s(3))], xsum.s()))).toBe(18);
      // a group of chains: [(1+1)*2, (2+2)*4]
      expect(await get(group(chain(add.s(1, 1), mul.s(2)), chain(add.s(2, 2), mul.s(4))))).toEqual([4, 16]);
      // a group then a chord in a chain: [2, 4] → each header xsum gets [2, 4] → [6, 6] → 12
      expect(await get(chain(group(add.s(1, 1), add.s(2, 2)), chord([xsum.s(), xsum.s()], xsum.s())))).toBe(12);
    }, 30_000);

    it('map, starmap and chunks run through the celery.map / celery.starmap builtins', async () => {
      const { app, add, xsum } = await setup();
      expect(await (await app.send(xmap(xsum, [[1, 2], [3], []]))).get({ timeout: 10_000 })).toEqual([3, 3, 0]);
      expect(await (await app.send(xstarmap(add, [[1, 2], [3, 4]]))).get({ timeout: 10_000 })).toEqual([3, 7]);
      const pairs = [1, 2, 3, 4, 5].map((i) => [i, i] as [number, number]);
      expect(await (await app.send(chunks(add, pairs, 2))).get({ timeout: 10_000 })).toEqual([[2, 4], [6, 8], [10]]);
    });

    it('T19 at CI size: failures inside nested canvases end in FAILURE with the errback run; a retrying middle step still completes', async () => {
      const { app, add, broken, xsum, flaky, onError, errbacks } = await setup();
      for (let i = 0; i < 5; i++) {
        errbacks.length = 0;
        // chain(group(chain(ok, fail, ok)), ok) with link_error E: the chord the group becomes must not hang.
        const nested = chain(group(chain(add.s(i, 1), broken.s(), add.s(1))), xsum.s()).set({ link_error: [onError.s('E')] });
        const err = (await (await app.send(nested)).get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError;
        expect(err.excType).toBe('ChordError');
        // E runs for the failed step and for the chord body it stopped (a ChordError).
        await waitFor(() => errbacks.filter((a) => a[1] === 'E').length === 2, 'E ran for the step and the body');
        // chord([ok×50, fail], body) with an errback on the chord.
        errbacks.length = 0;
        const members = [...Array.from({ length: 50 }, (_, k) => add.s(k, i)), broken.s(1)];
        const r = await app.send(chord(members, xsum.s()).set({ link_error: [onError.s('body')] }));
        expect(((await r.get({ timeout: 15_000 }).catch((e: unknown) => e)) as TaskError).code).toBe(ErrorCodes.CHORD_ERROR);
        await waitFor(() => errbacks.some((a) => a[1] === 'body'), 'the chord errback');
        expect(errbacks.filter((a) => a[1] === 'body')).toEqual([[r.id, 'body']]);
        // A middle step that retries twice, then succeeds.
        expect(await (await app.send(chain(add.s(i, 1), flaky.s(3), add.s(10)))).get({ timeout: 15_000 })).toBe(i + 11);
      }
    }, 60_000);

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
