import { describe, expect, it } from 'vitest';
import { isCeleriacError, ErrorCodes } from '@celeriac/core';
import { memoryApp } from '../helpers/in-process.js';

/** result.states() ends: with a ready state, with a TimeoutError naming the task at its timeout, or when its signal aborts. */
describe('result.states() bounds', () => {
  it('times out with TIMEOUT naming the task and its last state when no worker runs it', async () => {
    const app = memoryApp('states-timeout');
    const r = await app.sendTask('nobody.runs.this', []);
    const seen: string[] = [];
    const err = await (async () => {
      for await (const s of r.states({ intervalMs: 10, timeout: 100 })) seen.push(s.state);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['PENDING']);
    expect(isCeleriacError(err, ErrorCodes.TIMEOUT)).toBe(true);
    expect((err as Error).message).toContain(r.id);
    expect((err as Error).message).toContain('last state PENDING');
    expect(await r.progress()).toBeNull();
    expect(await r.info()).toBeNull();
  });

  it('stops when its signal aborts', async () => {
    const app = memoryApp('states-abort');
    const r = await app.sendTask('nobody.runs.this', []);
    const controller = new AbortController();
    const err = await (async () => {
      for await (const s of r.states({ intervalMs: 10, signal: controller.signal })) if (s.state === 'PENDING') controller.abort(new Error('enough'));
    })().catch((e: unknown) => e);
    expect((err as Error).message).toBe('enough');
  });
});
