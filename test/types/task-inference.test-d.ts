import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { chain, chord, chunks, createApp, group, xmap, xstarmap, type AsyncResult, type GroupResult, type Signature, type TaskContext, type TaskError } from '@celeriac/core';

const app = createApp({ broker: 'memory://types' });

describe('task handles infer args and result from the function', () => {
  const add = app.task({ name: 'tasks.add' }, async (x: number, y: number) => x + y);

  it('delay takes the function parameters and resolves to AsyncResult<return type>', () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[x: number, y: number]>();
    expectTypeOf(add.delay(1, 2)).resolves.toEqualTypeOf<AsyncResult<number>>();
    // @ts-expect-error wrong argument type
    void add.delay('1', 2);
    // @ts-expect-error missing argument
    void add.delay(1);
    // @ts-expect-error too many arguments
    void add.delay(1, 2, 3);
  });

  it('get() resolves to the function return type (awaited)', async () => {
    const r = await add.delay(1, 2);
    expectTypeOf(r.get()).resolves.toEqualTypeOf<number>();
    expectTypeOf(r.get({ timeout: 10 })).resolves.toEqualTypeOf<number>();
  });

  it('calling the handle runs it in-process with the same types', () => {
    expectTypeOf(add(1, 2)).resolves.toEqualTypeOf<number>();
    // @ts-expect-error wrong argument type
    void add(1, 'x');
  });

  it('applyAsync checks the args tuple', () => {
    void add.applyAsync([1, 2], {}, { countdown: 10 });
    // @ts-expect-error wrong tuple
    void add.applyAsync(['a', 2]);
  });

  it('sync functions infer their plain return type', () => {
    const upper = app.task({ name: 'tasks.upper' }, (s: string) => s.toUpperCase());
    expectTypeOf(upper.delay('a')).resolves.toEqualTypeOf<AsyncResult<string>>();
  });
});

describe('zod schemas drive the types when given', () => {
  const add = app.task({ name: 'tasks.zadd', args: z.tuple([z.number(), z.number()]) }, async function (x, y) {
    expectTypeOf(x).toEqualTypeOf<number>();
    expectTypeOf(this).toEqualTypeOf<TaskContext>();
    return x + y;
  });
  it('args come from the schema', () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[number, number]>();
    // @ts-expect-error schema says number
    void add.delay('1', 2);
  });
});

describe('any Standard Schema drives the types (not only zod)', () => {
  // A hand-written Standard Schema V1 (as valibot or arktype produce): input [string, number], output [number, number].
  const parsePair = {
    '~standard': {
      version: 1,
      vendor: 'handmade',
      validate: (value: unknown) =>
        Array.isArray(value) && typeof value[0] === 'string' && typeof value[1] === 'number'
          ? { value: [Number(value[0]), value[1]] as [number, number] }
          : { issues: [{ message: 'expected [string, number]' }] },
      types: undefined as unknown as { input: [string, number]; output: [number, number] },
    },
  } as const;
  const add = app.task({ name: 'tasks.sadd', args: parsePair }, async function (x, y) {
    expectTypeOf(x).toEqualTypeOf<number>();
    expectTypeOf(y).toEqualTypeOf<number>();
    expectTypeOf(this).toEqualTypeOf<TaskContext>();
    return x + y;
  });
  it('callers pass the input type, the function gets the output type', () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[string, number]>();
    expectTypeOf(add.delay('1', 2)).resolves.toEqualTypeOf<AsyncResult<number>>();
    // @ts-expect-error the schema's input is [string, number]
    void add.delay(1, 2);
  });
  it('a value without "~standard" is not a schema', () => {
    // @ts-expect-error not a Standard Schema
    app.task({ name: 'tasks.bad', args: { parse: (v: unknown) => v } }, () => 1);
  });
});

describe('signatures: s() partials and si()', () => {
  const add = app.task({ name: 'tasks.add2' }, (x: number, y: number) => x + y);
  it("s() binds trailing args: the parent's result is prepended later, so it waits for the leading ones", () => {
    const concat = app.task({ name: 'tasks.concat' }, (prefix: string, n: number) => `${prefix}${n}`);
    expectTypeOf(concat.s(4)).toEqualTypeOf<Signature<[prefix: string], string>>();
    expectTypeOf(concat.s('a', 4)).toEqualTypeOf<Signature<[], string>>();
    expectTypeOf(concat.s()).toEqualTypeOf<Signature<[prefix: string, n: number], string>>();
    // @ts-expect-error the trailing arg is a number
    concat.s('4');
    expectTypeOf(add.s(4)).toEqualTypeOf<Signature<[x: number], number>>();
  });
  it('si() takes every arg and waits for none', () => {
    expectTypeOf(add.si(1, 2)).toEqualTypeOf<Signature<[], number>>();
    // @ts-expect-error si needs all args
    add.si(1);
  });
});

describe('declareTask: typed handles for tasks implemented elsewhere', () => {
  const remote = app.declareTask<[to: string, subject: string], { sent: boolean }>('email.send');
  it('is typed like a local handle, without a local call', async () => {
    expectTypeOf(remote.delay).parameters.toEqualTypeOf<[to: string, subject: string]>();
    const r = await remote.delay('a@b.c', 'hi');
    expectTypeOf(r.get()).resolves.toEqualTypeOf<{ sent: boolean }>();
    // @ts-expect-error wrong type
    void remote.delay(1, 'x');
    // @ts-expect-error no in-process call for a remote task
    void remote('a', 'b');
  });
});

describe('canvas typing', () => {
  const add = app.task({ name: 'tasks.cadd' }, (x: number, y: number) => x + y);
  const upper = app.task({ name: 'tasks.upper2' }, (s: string) => s.toUpperCase());
  const xsum = app.task({ name: 'tasks.cxsum' }, (numbers: number[]) => numbers.reduce((a, b) => a + b, 0));
  it('a chain is typed by its last step; a step that cannot take the previous result does not compile', async () => {
    expectTypeOf(chain(add.s(4, 4), add.s(8))).toEqualTypeOf<Signature<[], number>>();
    expectTypeOf(add.s(4, 4).pipe(add.s(1))).toEqualTypeOf<Signature<[], number>>();
    // @ts-expect-error upper takes a string, add returns a number
    chain(add.s(4, 4), upper.s());
    // @ts-expect-error the same through pipe
    add.s(4, 4).pipe(upper.s());
    expectTypeOf(await app.send(chain(add.s(1, 1), add.s(2)))).toEqualTypeOf<AsyncResult<number>>();
  });
  it('a group gives a GroupResult of its members; a chord body must take the list of results', async () => {
    expectTypeOf(await app.send(group(add.s(1, 1), add.s(2, 2)))).toEqualTypeOf<GroupResult<number>>();
    expectTypeOf(chord([add.s(1, 1)], xsum.s())).toEqualTypeOf<Signature<[], number>>();
    // @ts-expect-error the body gets number[], not a string
    chord([add.s(1, 1)], upper.s());
  });
  it('nested: a group or chord inside a chain takes the previous result in every member', () => {
    expectTypeOf(chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s())).toEqualTypeOf<Signature<[], number>>();
    expectTypeOf(chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()))).toEqualTypeOf<Signature<[], number>>();
    // @ts-expect-error upper takes a string, not the number add(1, 1) returns
    chain(add.s(1, 1), group(upper.s(), upper.s()));
  });
  it('map, starmap and chunks are typed by the task', async () => {
    expectTypeOf(xmap(upper, ['a', 'b'])).toEqualTypeOf<Signature<[], string[]>>();
    expectTypeOf(xstarmap(add, [[1, 2]])).toEqualTypeOf<Signature<[], number[]>>();
    expectTypeOf(await app.send(chunks(add, [[1, 2], [3, 4]], 1))).toEqualTypeOf<GroupResult<number[]>>();
    // @ts-expect-error add takes two numbers
    xstarmap(add, [['a', 'b']]);
  });
});

describe('the public API forms of the newcomer pass', () => {
  const add = app.task({ name: 'tasks.add3' }, (x: number, y: number) => x + y);

  it('one-step calls: delay(...).get() and app.send(...).get() resolve to the value', () => {
    expectTypeOf(add.delay(1, 2).get()).resolves.toEqualTypeOf<number>();
    expectTypeOf(add.delay(1, 2).get({ timeout: 3000 })).resolves.toEqualTypeOf<number>();
    expectTypeOf(app.send(chain(add.s(1, 2), add.s(3))).get()).resolves.toEqualTypeOf<number>();
    expectTypeOf(app.send(group([add.s(1, 2), add.s(3, 4)])).get()).resolves.toEqualTypeOf<number[]>();
  });

  it('applyAsync(args, options) takes kwargs inside the options; the old three-argument form still compiles', () => {
    expectTypeOf(add.applyAsync([1, 2], { countdown: 10_000, kwargs: {} })).resolves.toEqualTypeOf<AsyncResult<number>>();
    expectTypeOf(add.applyAsync([1, 2], {}, { queue: 'q' })).resolves.toEqualTypeOf<AsyncResult<number>>();
    // @ts-expect-error retries is set by workers, not by callers
    void add.applyAsync([1, 2], { retries: 3 });
    // @ts-expect-error chain is a protocol field, not a call option
    void add.applyAsync([1, 2], { chain: [] });
  });

  it('Signature.set() takes the camelCase, milliseconds options of applyAsync', () => {
    expectTypeOf(add.s(1, 2).set({ countdown: 5000, taskId: 'x', linkError: add.s(0) })).toEqualTypeOf<Signature<[], number>>();
  });

  it('GroupResult.get({ propagate: false }) includes the errors it can return', async () => {
    const g = await app.send(group([add.s(1, 2)]));
    expectTypeOf(g.get({ propagate: false })).resolves.toEqualTypeOf<(number | TaskError)[]>();
    expectTypeOf(g.get()).resolves.toEqualTypeOf<number[]>();
  });

  it('declareTask<typeof handle> types a send-only handle from a handle type', () => {
    const remote = app.declareTask<typeof add>('tasks.add3');
    expectTypeOf(remote.delay).parameters.toEqualTypeOf<[x: number, y: number]>();
    expectTypeOf(remote.delay(1, 2).get()).resolves.toEqualTypeOf<number>();
    // @ts-expect-error send-only: no local call
    void remote(1, 2);
  });
});
