import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, ErrorCodes, TaskError } from '@celeriac/core';
import { memoryApp, startInProcessWorker } from '../helpers/in-process.js';

/** A Standard Schema V1 written by hand, as a library other than zod (valibot, arktype) provides one. */
function schema<I, O>(vendor: string, check: (value: unknown) => { value: O } | { issues: { message: string; path?: PropertyKey[] }[] }) {
  return {
    '~standard': { version: 1 as const, vendor, validate: check, types: undefined as unknown as { input: I; output: O } },
  };
}

const numericPair = schema<[string, string], [number, number]>('handmade', (v) => {
  if (!Array.isArray(v) || v.length !== 2) return { issues: [{ message: 'expected two values' }] };
  const out = v.map(Number);
  const bad = out.findIndex((n) => Number.isNaN(n));
  return bad === -1 ? { value: out as [number, number] } : { issues: [{ message: 'not a number', path: [bad] }] };
});

describe('task args/result schemas: any Standard Schema', () => {
  it('a non-zod schema validates and transforms the args on the worker; a mismatch is TASK_ARGS_INVALID naming the path', async () => {
    const app = memoryApp('std-args');
    const add = app.task({ name: 'tasks.add', args: numericPair }, (x, y) => x + y);
    await startInProcessWorker(app);
    await expect(add.delay('1', '2').get({ timeout: 3000 })).resolves.toBe(3);
    const err = (await add
      .delay('1', 'two')
      .get({ timeout: 3000 })
      .catch((e: unknown) => e)) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.code).toBe(ErrorCodes.TASK_ARGS_INVALID);
    expect(err.excMessage).toContain('arg 1: not a number');
  });

  it('a result schema (zod here, through its "~standard") checks the return value: TASK_RESULT_INVALID', async () => {
    const app = memoryApp('std-result');
    const bad = app.task({ name: 'tasks.bad', result: z.string() }, () => 42 as unknown as string);
    const good = app.task({ name: 'tasks.good', result: z.string() }, () => 'ok');
    await startInProcessWorker(app);
    await expect(good.delay().get({ timeout: 3000 })).resolves.toBe('ok');
    const err = (await bad
      .delay()
      .get({ timeout: 3000 })
      .catch((e: unknown) => e)) as TaskError;
    expect(err.code).toBe(ErrorCodes.TASK_RESULT_INVALID);
    expect(err.excMessage).toMatch(/Invalid result for task tasks\.bad: result: /);
  });

  it('an asynchronous schema is refused with a message saying so', async () => {
    const app = memoryApp('std-async');
    const slow = schema<[number], [number]>('async-lib', () => Promise.resolve({ value: [1] }) as never);
    const t = app.task({ name: 'tasks.slow', args: slow }, (n) => n);
    await startInProcessWorker(app);
    const err = (await t
      .delay(1)
      .get({ timeout: 3000 })
      .catch((e: unknown) => e)) as TaskError;
    expect(err.code).toBe(ErrorCodes.TASK_ARGS_INVALID);
    expect(err.excMessage).toContain('asynchronous (async-lib)');
  });

  it('something that is not a Standard Schema (an old zod 3 schema has no "~standard") is a ConfigError that says what is expected', () => {
    const app = memoryApp('std-none');
    const legacy = { parse: (v: unknown) => v, safeParse: (v: unknown) => ({ success: true, data: v }) };
    expect(() => app.task({ name: 'tasks.legacy', args: legacy as never }, () => 1)).toThrow(ConfigError);
    expect(() => app.task({ name: 'tasks.legacy', args: legacy as never }, () => 1)).toThrow(/expected a Standard Schema .*upgrade zod/);
  });
});
