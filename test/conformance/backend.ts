import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, TimeoutError, type CeleriacError, type ResultBackend, type ResultMeta } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';

const meta = (id: string, status: string, result: unknown = null): ResultMeta => ({
  status,
  result,
  traceback: null,
  children: [],
  date_done: status === 'SUCCESS' || status === 'FAILURE' ? '2026-01-01T00:00:00.000000' : null,
  task_id: id,
});

/** The ResultBackend conformance suite: every backend runs it. */
export function backendConformance(
  name: string,
  setup: () => Promise<{
    make: () => Promise<ResultBackend>;
    /** Backends without `sharedResults` (rpc://) deliver a state to the reply queue named in `store`: the reader's. */
    replyTo?: (reader: ResultBackend) => string;
  }>,
): void {
  describe(`ResultBackend conformance: ${name}`, () => {
    const open: ResultBackend[] = [];
    const client = async (make: () => Promise<ResultBackend>) => {
      const b = await make();
      open.push(b);
      return b;
    };
    afterEach(async () => {
      for (const b of open.splice(0)) await b.close();
    });
    const day = { expiresMs: 86_400_000 };

    /** Store options addressed to `reader` (its reply queue where the backend needs one). */
    const ctx = async () => {
      const { make, replyTo } = await setup();
      return { make, to: (reader: ResultBackend, expiresMs = day.expiresMs) => ({ expiresMs, replyTo: replyTo?.(reader) }) };
    };

    it('stores and reads records, one or many; unknown ids are undefined', async () => {
      const { make, to } = await ctx();
      const b = await client(make);
      await b.store(meta('a', 'SUCCESS', 2), to(b));
      await b.store(meta('b', 'FAILURE', { exc_type: 'Exception', exc_message: ['x'], exc_module: 'builtins' }), to(b));
      expect(await b.get('a')).toMatchObject({ task_id: 'a', status: 'SUCCESS', result: 2, traceback: null });
      expect((await b.getMany(['a', 'nope', 'b'])).map((m) => m?.status)).toEqual(['SUCCESS', undefined, 'FAILURE']);
    });

    it('never overwrites a stored SUCCESS', async () => {
      const { make, to } = await ctx();
      const b = await client(make);
      await b.store(meta('s', 'SUCCESS', 1), to(b));
      await b.store(meta('s', 'FAILURE', 'late duplicate'), to(b));
      await b.store(meta('s', 'STARTED'), to(b));
      expect((await b.get('s'))?.result).toBe(1);
    });

    it('wait resolves when a ready state is stored later, from another client, ignoring non-ready states', async () => {
      const { make, to } = await ctx();
      const waiter = await client(make);
      const writer = await client(make);
      const waiting = waiter.wait('w', { timeoutMs: 10_000 });
      await writer.store(meta('w', 'STARTED'), to(waiter));
      await writer.store(meta('w', 'RETRY'), to(waiter));
      await writer.store(meta('w', 'SUCCESS', 'done'), to(waiter));
      expect((await waiting).result).toBe('done');
    });

    it('wait resolves at once for an already ready record', async () => {
      const { make, to } = await ctx();
      const b = await client(make);
      await b.store(meta('r', 'REVOKED'), to(b));
      expect((await b.wait('r', { timeoutMs: 5000 })).status).toBe('REVOKED');
    });

    it('wait past its timeout rejects with TimeoutError naming the task', async () => {
      const b = await client((await setup()).make);
      const err = await b.wait('never', { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).code).toBe(ErrorCodes.TIMEOUT);
      expect((err as Error).message).toContain('never');
    });

    it('wait stops when its signal aborts', async () => {
      const b = await client((await setup()).make);
      const ac = new AbortController();
      const waiting = b.wait('aborted', { signal: ac.signal });
      ac.abort(new Error('stop waiting'));
      await expect(waiting).rejects.toThrow('stop waiting');
    });

    it('forget removes a record', async () => {
      const { make, to } = await ctx();
      const b = await client(make);
      await b.store(meta('f', 'SUCCESS', 1), to(b));
      await b.forget('f');
      expect(await b.get('f')).toBeUndefined();
    });

    it('records expire, or (without shared results) reach only the client they are addressed to', async () => {
      const { make, to } = await ctx();
      const b = await client(make);
      if (!b.capabilities.sharedResults) {
        const other = await client(make);
        await b.store(meta('mine', 'SUCCESS', 1), to(other));
        expect(await b.get('mine')).toBeUndefined();
        expect((await other.get('mine'))?.result).toBe(1);
        return;
      }
      await b.store(meta('e', 'SUCCESS', 1), to(b, 1000));
      expect(await b.get('e')).toBeDefined();
      await waitFor(async () => (await b.get('e')) === undefined, 'expiry', 5000, 50);
    });

    it('joins a chord atomically (distinct members counted once, one caller gets the parts in order), or refuses by name', async () => {
      const { make } = await setup();
      const a = await client(make);
      const b = await client(make);
      if (!a.capabilities.chords) {
        const err = await a.chordInit('g1', 3, day).catch((e: unknown) => e);
        expect((err as CeleriacError).code).toBe(ErrorCodes.CAPABILITY_MISSING);
        expect((err as Error).message).toMatch(/redis:\/\/ or sqlite:\/\//);
        return;
      }
      await a.chordInit('g1', 3, day);
      const part = (index: number) => ({ index, taskId: `t${index}`, state: 'SUCCESS', result: index * 10 });
      expect(await a.chordPartReturn('g1', part(2), day)).toBeNull();
      expect(await b.chordPartReturn('g1', part(0), day)).toBeNull();
      // Member 0 ran twice: it still counts once.
      expect(await a.chordPartReturn('g1', part(0), day)).toBeNull();
      const done = await b.chordPartReturn('g1', part(1), day);
      expect(done?.map((p) => [p.index, p.taskId, p.result])).toEqual([[0, 't0', 0], [1, 't1', 10], [2, 't2', 20]]);
      // Until the body is confirmed sent, the completer's next run (it died before sending) gets the parts
      // again — and only it: another member joining again (its first reply lost) does not send the body twice.
      expect((await a.chordPartReturn('g1', part(1), day))?.map((p) => p.index)).toEqual([0, 1, 2]);
      expect(await a.chordPartReturn('g1', part(2), day)).toBeNull();
      await b.chordComplete('g1', day);
      // After completion the join is gone: a late duplicate completes nothing.
      expect(await a.chordPartReturn('g1', part(1), day)).toBeNull();
      expect(await a.chordPartReturn('g1', part(0), day)).toBeNull();
    });

    it('remembers revocations for their TTL, across clients (or declares it does not)', async () => {
      const { make } = await setup();
      const a = await client(make);
      const c = await client(make);
      await a.revoke(['x1', 'x2'], { expiresMs: 1000 });
      const revoked = await c.revokedIds();
      if (!a.capabilities.revocations) {
        expect(revoked.size).toBe(0);
        return;
      }
      expect(revoked.has('x1')).toBe(true);
      expect(revoked.has('x2')).toBe(true);
      expect(revoked.has('x3')).toBe(false);
      await waitFor(async () => (await c.revokedIds()).size === 0, 'revocation expiry', 5000, 50);
    });
  });
}
