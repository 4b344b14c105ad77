import { appendFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultLog, startFaultProxy, type FaultProxy, type FaultWindow } from '../harness/fault-proxy.js';
import { checkHistory, ProducerHistory, readRuns, summary, unfinishedRuns, type RunRecord } from '../harness/history.js';
import { recordRun, recordStart } from '../harness/run-record.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../servers/redis.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Echo {
  readonly port: number;
  /** Every byte the server has received, on any connection. */
  got(): string;
  /** Server-side sockets still open. */
  open(): number;
}

/** A TCP echo server on loopback: the simplest server whose every byte a test can account for. */
async function startEcho(): Promise<Echo> {
  const sockets = new Set<Socket>();
  let got = '';
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      s.write(b);
    });
    s.on('error', () => {
      // Resets are what these tests provoke.
    });
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as { port: number }).port, got: () => got, open: () => sockets.size };
}

interface Client {
  readonly socket: Socket;
  received(): Buffer;
  text(): string;
  readonly events: { ended: boolean; closed: boolean; error: NodeJS.ErrnoException | null };
}

/** A client socket that records what it receives and what happens to it. */
async function startClient(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  const events: Client['events'] = { ended: false, closed: false, error: null };
  socket.on('data', (b: Buffer) => chunks.push(b));
  socket.on('end', () => (events.ended = true));
  socket.on('close', () => (events.closed = true));
  socket.on('error', (e) => (events.error = e));
  cleanups.push(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received = (): Buffer => Buffer.concat(chunks);
  return { socket, received, text: () => received().toString('latin1'), events };
}

async function proxyTo(port: number): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ port });
  cleanups.push(() => proxy.close());
  return proxy;
}

async function echoed(c: Client, text: string, timeoutMs?: number): Promise<void> {
  await waitFor(() => c.text() === text, `the client to have received ${JSON.stringify(text)} (so far ${JSON.stringify(c.text())})`, timeoutMs);
}

describe('fault proxy', () => {
  it('pass forwards both ways, and a FIN from either side', async () => {
    const echo = await startEcho();
    const proxy = await proxyTo(echo.port);
    expect(proxy.url('redis', '/0')).toBe(`redis://127.0.0.1:${proxy.port}/0`);
    expect(proxy.url('amqp')).toBe(`amqp://127.0.0.1:${proxy.port}`);
    expect(proxy.mode()).toEqual({ kind: 'pass' });
    const c = await startClient(proxy.port);
    c.socket.write('hello');
    await echoed(c, 'hello');
    expect(proxy.connections()).toBe(1);
    // The echo server closes when it sees our FIN; its FIN must come back through the proxy.
    c.socket.end();
    await waitFor(() => c.events.ended, 'the server FIN to reach the client');
    await waitFor(() => proxy.connections() === 0 && echo.open() === 0, 'both sides to close');
  });

  it('delay holds each chunk, both directions, in order — and applies to a connection already open', async () => {
    const echo = await startEcho();
    const proxy = await proxyTo(echo.port);
    const c = await startClient(proxy.port);
    c.socket.write('warm');
    await echoed(c, 'warm');
    proxy.set({ kind: 'delay', ms: 200 });
    const t0 = performance.now();
    c.socket.write('a');
    c.socket.write('b');
    c.socket.write('c');
    await echoed(c, 'warmabc');
    // Each direction holds it 200 ms, so the round trip takes at least that (in fact about twice).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(200);
    expect(echo.got()).toBe('warmabc');
  });

  it('blackhole drops bytes both ways while every socket stays open, and pass works again afterwards', async () => {
    const echo = await startEcho();
    const proxy = await proxyTo(echo.port);
    const c = await startClient(proxy.port);
    c.socket.write('one');
    await echoed(c, 'one');

    proxy.set({ kind: 'blackhole' });
    c.socket.write('lost');
    await expect(waitFor(() => c.text() !== 'one' || echo.got() !== 'one', 'anything to cross the partition', 300)).rejects.toThrow(/Timed out/);
    expect(c.events).toEqual({ ended: false, closed: false, error: null });
    expect(echo.open()).toBe(1);

    // A connection made during the partition is accepted, but nothing reaches the server.
    const d = await startClient(proxy.port);
    d.socket.write('early');
    await waitFor(() => proxy.connections() === 2, 'the proxy to count the new client');
    await expect(waitFor(() => echo.open() > 1 || d.text() !== '', 'the new client to reach the server', 300)).rejects.toThrow(/Timed out/);

    proxy.set({ kind: 'pass' });
    c.socket.write('two');
    await echoed(c, 'onetwo');
    await waitFor(() => echo.open() === 2, 'the held connection to reach the server');
    d.socket.write('late');
    await echoed(d, 'late');
    // Dropped, not replayed once the partition healed.
    expect(echo.got()).not.toMatch(/lost|early/);
    expect(c.events.closed || d.events.closed).toBe(false);
  });

  it('reset sends an RST to every current socket, then passes new connections', async () => {
    const echo = await startEcho();
    const proxy = await proxyTo(echo.port);
    const c = await startClient(proxy.port);
    c.socket.write('x');
    await echoed(c, 'x');

    proxy.set({ kind: 'reset' });
    expect(proxy.mode()).toEqual({ kind: 'pass' });
    await waitFor(() => c.events.closed, 'the client socket to close');
    expect(c.events.error?.code).toBe('ECONNRESET');
    await waitFor(() => echo.open() === 0, 'the upstream socket to close');
    expect(proxy.connections()).toBe(0);

    const d = await startClient(proxy.port);
    d.socket.write('y');
    await echoed(d, 'y');
  });

  it('throttle limits each direction to bytesPerSecond, bytes intact', async () => {
    const echo = await startEcho();
    const proxy = await proxyTo(echo.port);
    proxy.set({ kind: 'throttle', bytesPerSecond: 5000 });
    const c = await startClient(proxy.port);
    const payload = Buffer.alloc(10 * 1024, 0);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const t0 = performance.now();
    c.socket.write(payload);
    await waitFor(() => c.received().length >= payload.length, 'the whole payload back', 15_000);
    const elapsed = performance.now() - t0;
    // 10 KB at 5000 B/s is ~2 s one way; the echo overlaps the way there. Bounds are loose on purpose.
    expect(elapsed).toBeGreaterThanOrEqual(1500);
    expect(elapsed).toBeLessThan(12_000);
    expect(c.received().equals(payload)).toBe(true);
  });

  it('an upstream that refuses the connection closes the client socket', async () => {
    const proxy = await proxyTo(await freePort());
    const c = await startClient(proxy.port);
    await waitFor(() => c.events.closed, 'the client socket to close');
    await waitFor(() => proxy.connections() === 0, 'the proxy to forget it');
  });

  it('close() destroys every socket and stops listening', async () => {
    const echo = await startEcho();
    const proxy = await startFaultProxy({ port: echo.port });
    const c = await startClient(proxy.port);
    c.socket.write('x');
    await echoed(c, 'x');
    await proxy.close();
    await waitFor(() => c.events.closed && echo.open() === 0, 'both sides to close');
    await expect(startClient(proxy.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects modes that make no sense', async () => {
    const proxy = await proxyTo(await freePort());
    expect(() => proxy.set({ kind: 'delay', ms: -1 })).toThrow(RangeError);
    expect(() => proxy.set({ kind: 'throttle', bytesPerSecond: 0 })).toThrow(RangeError);
    expect(proxy.mode()).toEqual({ kind: 'pass' });
  });
});

describe('fault log', () => {
  it('records windows, closing one however during() ends', async () => {
    const log = new FaultLog();
    const w = log.begin('blackhole', 'redis');
    expect(w).toMatchObject({ kind: 'blackhole', end: null, detail: 'redis' });
    log.end(w);
    const end = w.end;
    expect(end).toBeGreaterThanOrEqual(w.start);
    log.end(w);
    expect(w.end).toBe(end);
    await expect(log.during('reset', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await log.during('delay', () => Promise.resolve(7))).toBe(7);
    expect(log.windows().map((x) => [x.kind, x.end !== null])).toEqual([
      ['blackhole', true],
      ['reset', true],
      ['delay', true],
    ]);
    expect('detail' in log.windows()[1]!).toBe(false);
  });
});

describe('history', () => {
  const dir = tempDir('celeriac-history-');
  const run = (id: string, start: number, end?: number, pid = 1): RunRecord =>
    end === undefined ? { id, attempt: 0, deliveryCount: 1, pid, start } : { id, attempt: 0, deliveryCount: 1, pid, start, end };

  it('a later outcome only ever strengthens an id: confirmed > unknown > failed', () => {
    const p = new ProducerHistory();
    p.failed('a');
    p.confirmed('a');
    p.confirmed('b');
    p.failed('b');
    p.unknown('b');
    p.failed('c');
    p.unknown('c');
    p.unknown('d');
    p.failed('d');
    expect(Object.fromEntries(p.outcomes())).toEqual({ a: 'confirmed', b: 'confirmed', c: 'unknown', d: 'unknown' });
  });

  it('puts each id in its class', () => {
    const p = new ProducerHistory();
    for (const id of ['ok', 'lost', 'dup', 'started-only']) p.confirmed(id);
    p.unknown('unknown-done');
    p.failed('failed-done');
    p.unknown('unknown-never');
    p.failed('failed-never');
    const runs = [
      run('ok', 10),
      run('ok', 10, 20),
      run('dup', 10, 20),
      run('dup', 30, 40, 2),
      run('unknown-done', 10, 20),
      run('failed-done', 10, 20),
      run('started-only', 10),
      run('stranger', 10, 20),
    ];
    const report = checkHistory({ producer: p, runs, faults: [], slackMs: 0 });
    expect(report.counts).toEqual({
      enqueued: 8,
      confirmed: 4,
      failed: 2,
      unknown: 2,
      ok: 1,
      lost: 2,
      duplicated: 1,
      recovered: 2,
      unexpected: 1,
      attributed: 0,
      unattributed: 1,
    });
    expect(report.lost.sort()).toEqual(['lost', 'started-only']);
    expect(report.unexpected).toEqual(['stranger']);
    expect(report.unattributed).toEqual([{ id: 'dup', runs: [run('dup', 10, 20), run('dup', 30, 40, 2)] }]);
    expect(unfinishedRuns(runs)).toEqual([run('started-only', 10)]);
    expect(summary(report)).toContain('ok 1, lost 2, duplicated 1 (attributed 0, unattributed 1), recovered 2, unexpected 1; lost: lost, started-only');
  });

  it('attributes a duplicate to a fault window its extra run overlaps, with slack after the window', () => {
    const producer = new Map([['x', 'confirmed' as const]]);
    const window: FaultWindow = { kind: 'blackhole', start: 1000, end: 2000 };
    const check = (extra: RunRecord, slackMs: number, faults: FaultWindow[] = [window], now?: number) =>
      checkHistory({ producer, runs: [run('x', 0, 50), extra], faults, slackMs, ...(now === undefined ? {} : { now }) }).counts;
    // Inside, and straddling either edge.
    expect(check(run('x', 1500, 1600), 0)).toMatchObject({ duplicated: 1, attributed: 1, unattributed: 0 });
    expect(check(run('x', 900, 1100), 0)).toMatchObject({ attributed: 1 });
    expect(check(run('x', 1900, 2100), 0)).toMatchObject({ attributed: 1 });
    // Outside: before, and after without enough slack.
    expect(check(run('x', 100, 200), 0)).toMatchObject({ attributed: 0, unattributed: 1 });
    expect(check(run('x', 2500, 2600), 0)).toMatchObject({ attributed: 0, unattributed: 1 });
    expect(check(run('x', 2500, 2600), 499)).toMatchObject({ unattributed: 1 });
    expect(check(run('x', 2500, 2600), 500)).toMatchObject({ attributed: 1 });
    // An open window runs until now.
    const open: FaultWindow = { kind: 'blackhole', start: 1000, end: null };
    expect(check(run('x', 4000, 4100), 0, [open], 5000)).toMatchObject({ attributed: 1 });
    expect(check(run('x', 4000, 4100), 0, [open], 3000)).toMatchObject({ unattributed: 1 });
  });

  it('judges the extra runs, not the original: an original inside a window does not excuse a later extra', () => {
    const producer = new Map([['x', 'confirmed' as const]]);
    const faults: FaultWindow[] = [{ kind: 'reset', start: 0, end: 100 }];
    const report = checkHistory({ producer, runs: [run('x', 5000, 5100), run('x', 10, 20)], faults, slackMs: 0 });
    expect(report.counts).toMatchObject({ duplicated: 1, attributed: 0, unattributed: 1 });
    expect(report.unattributed[0]!.runs.map((r) => r.start)).toEqual([10, 5000]);
    // Three completions: every extra must be explained.
    const three = checkHistory({ producer, runs: [run('x', 10, 20), run('x', 50, 60), run('x', 5000, 5100)], faults, slackMs: 0 });
    expect(three.counts).toMatchObject({ duplicated: 1, attributed: 0, unattributed: 1 });
  });

  it('run records round-trip through a file; a truncated last line is skipped, a bad middle line throws', () => {
    const file = join(dir, 'runs.jsonl');
    expect(readRuns(file)).toEqual([]);
    recordStart(file, { id: 'a', attempt: 0, deliveryCount: 1, pid: 7, start: 10 });
    recordRun(file, { id: 'a', attempt: 0, deliveryCount: 1, pid: 7, start: 10, end: 20 });
    recordStart(file, { id: 'b', attempt: 1, deliveryCount: null, pid: 8, start: 30 });
    appendFileSync(file, '{"id":"c","attempt":0,"deliv');
    const runs = readRuns(file);
    expect(runs).toEqual([
      { id: 'a', attempt: 0, deliveryCount: 1, pid: 7, start: 10 },
      { id: 'a', attempt: 0, deliveryCount: 1, pid: 7, start: 10, end: 20 },
      { id: 'b', attempt: 1, deliveryCount: null, pid: 8, start: 30 },
    ]);
    expect(unfinishedRuns(runs)).toEqual([{ id: 'b', attempt: 1, deliveryCount: null, pid: 8, start: 30 }]);
    // A complete last record without its newline still counts.
    const whole = join(dir, 'whole.jsonl');
    writeFileSync(whole, JSON.stringify(run('d', 1, 2)));
    expect(readRuns(whole)).toEqual([run('d', 1, 2)]);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify(run('e', 1, 2))}\n{"id":"e",\n${JSON.stringify(run('e', 3, 4))}\n`);
    expect(() => readRuns(bad)).toThrow(/line 2/);
  });
});
