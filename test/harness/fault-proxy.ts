import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** What the proxy does to the bytes between clients and the server. */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'blackhole' }
  | { kind: 'reset' }
  | { kind: 'throttle'; bytesPerSecond: number };

/** A TCP proxy on loopback whose behaviour a test switches at run time. */
export interface FaultProxy {
  /** Where clients connect (on 127.0.0.1). */
  readonly port: number;
  /** A URL to the proxy, e.g. `url('redis', '/0')` → `redis://127.0.0.1:<port>/0`. */
  url(scheme: string, path?: string): string;
  /** The current mode (`reset` is a one-shot action, so this never reports it). */
  mode(): FaultMode;
  /** Switch mode; it applies at once to existing connections as well as new ones. */
  set(mode: FaultMode): void;
  /** Client sockets currently open. */
  connections(): number;
  /** Client connections accepted since the start (a client that replaces its socket adds one). */
  accepted(): number;
  /** Destroy every socket and stop listening. */
  close(): Promise<void>;
}

/** A queued FIN: it travels behind the data that preceded it. */
const END = Symbol('end');

interface Item {
  data: Buffer | typeof END;
  /** When it reached the proxy (performance.now()), for `delay`. */
  readonly at: number;
}

/** Past this many queued bytes the source is paused, so a slow mode cannot grow memory without bound. */
const HIGH_WATER = 1 << 20;

/**
 * One direction of one connection: chunks from `source` go through a queue to
 * `dest()`, paced by the proxy's current mode. The queue is what lets a mode
 * change apply to bytes already in flight, and keeps order whatever the mode.
 */
class Pipe {
  private readonly queue: Item[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private draining = false;
  /** When the throttle allows the next slice (performance.now()). */
  private nextFree = 0;

  constructor(
    private readonly source: Socket,
    private readonly dest: () => Socket | null,
    private readonly mode: () => FaultMode,
  ) {
    source.on('data', (chunk: Buffer) => {
      // A partition loses what is sent into it: drop, never buffer for later.
      if (this.mode().kind === 'blackhole') return;
      this.queue.push({ data: chunk, at: performance.now() });
      this.queued += chunk.length;
      if (this.queued > HIGH_WATER) source.pause();
      this.pump();
    });
    // A FIN is held (not dropped) by a blackhole: a real stack retransmits it once the partition heals.
    source.on('end', () => {
      this.queue.push({ data: END, at: performance.now() });
      this.pump();
    });
  }

  /** Bytes in flight are lost when a partition starts, like packets on the wire; a queued FIN survives. */
  dropData(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.data !== END) this.queue.splice(i, 1);
    this.queued = 0;
    this.source.resume();
  }

  /** Forward whatever the current mode allows now, and arrange to be called again for the rest. */
  pump(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const mode = this.mode();
    for (;;) {
      const head = this.queue[0];
      if (!head || mode.kind === 'blackhole' || this.draining) return;
      const dest = this.dest();
      if (!dest) return; // Upstream not connected yet: called again once it is.
      const now = performance.now();
      if (mode.kind === 'delay' && now < head.at + mode.ms) return this.later(head.at + mode.ms - now);
      if (head.data === END) {
        this.queue.shift();
        if (!dest.destroyed) dest.end();
        continue;
      }
      let out = head.data;
      if (mode.kind === 'throttle') {
        if (now < this.nextFree) return this.later(this.nextFree - now);
        // Slices of a tenth of a second's worth keep the rate smooth rather than one burst a second.
        const slice = Math.max(1, Math.floor(mode.bytesPerSecond / 10));
        if (out.length > slice) {
          head.data = out.subarray(slice);
          out = out.subarray(0, slice);
        } else this.queue.shift();
        this.nextFree = Math.max(this.nextFree, now) + (out.length / mode.bytesPerSecond) * 1000;
      } else this.queue.shift();
      this.queued -= out.length;
      if (this.queued <= HIGH_WATER) this.source.resume();
      if (dest.destroyed || !dest.writable) continue; // The peer is gone: nowhere for the bytes to go.
      if (!dest.write(out)) {
        // 'drain' never comes to a socket that closes first, so wait for either (and drop the other listener).
        this.draining = true;
        const resume = (): void => {
          dest.off('drain', resume);
          dest.off('close', resume);
          this.draining = false;
          this.pump();
        };
        dest.on('drain', resume);
        dest.on('close', resume);
        return;
      }
    }
  }

  private later(ms: number): void {
    // Timers may fire a little early against performance.now(): pump() re-checks and waits again if so.
    this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(ms)));
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }
}

/** Send an RST where Node can (20.x has resetAndDestroy), so the peer sees ECONNRESET rather than a FIN. */
function reset(socket: Socket): void {
  try {
    if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  } catch {
    // resetAndDestroy throws on a socket with no TCP handle left (already closing): destroy() is all there is.
    socket.destroy();
  }
}

/**
 * A TCP fault proxy between clients and a server on loopback (node:net only).
 *
 * - `pass` forwards both ways.
 * - `delay` holds each chunk `ms` before forwarding it (both directions, order kept).
 * - `blackhole` is a half-open partition: nothing is forwarded either way, no
 *   socket is closed, and bytes sent meanwhile (or in flight when it starts)
 *   are dropped, not replayed later. New connections are accepted but get no
 *   upstream connection until the partition ends; a FIN or an abrupt close on
 *   either side is held back until then too. Note that losing bytes mid-stream
 *   (which TCP itself never does: it retransmits) desynchronises a
 *   request/response protocol on a connection that lives through the
 *   partition — ioredis, for one, then pairs each reply with the command
 *   before it. To model a partition that outlasted TCP's patience, heal it
 *   with `reset` rather than `pass`.
 * - `reset` sends an RST on every current client and upstream socket, then
 *   behaves as `pass` (mode() reports `pass`).
 * - `throttle` forwards at most `bytesPerSecond` per direction per connection.
 *
 * Every socket error is handled here (a fault test provokes them on purpose);
 * a failed upstream connect closes its client socket.
 */
export async function startFaultProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  const host = target.host ?? '127.0.0.1';
  let current: FaultMode = { kind: 'pass' };
  let closed = false;

  interface Conn {
    readonly client: Socket;
    upstream: Socket | null;
    readonly pipes: Pipe[];
    /** A side closed abruptly while blackholed: the other side learns of it when the partition heals. */
    teardownPending: boolean;
  }
  const conns = new Set<Conn>();

  const teardown = (conn: Conn): void => {
    conns.delete(conn);
    for (const p of conn.pipes) p.stop();
    conn.client.destroy();
    conn.upstream?.destroy();
  };

  /**
   * A side that closes without a FIN first (an error, a reset, a killed
   * server) takes the connection with it. One that closed cleanly needs
   * nothing: its FIN is already queued for the other side.
   */
  const watchClose = (conn: Conn, socket: Socket): void => {
    let ended = false;
    socket.on('end', () => (ended = true));
    socket.on('close', () => {
      if (ended && !socket.errored) {
        if (conn.client.destroyed && (!conn.upstream || conn.upstream.destroyed)) conns.delete(conn);
        return;
      }
      if (current.kind === 'blackhole' && conn.upstream) conn.teardownPending = true;
      else teardown(conn);
    });
  };

  const connectUpstream = (conn: Conn): void => {
    const upstream = connect({ host, port: target.port, allowHalfOpen: true });
    upstream.on('error', () => {
      // Seen again as 'close' (with no FIN), which closes the client: a refused connect included.
    });
    conn.upstream = upstream;
    conn.pipes.push(new Pipe(upstream, () => conn.client, () => current));
    watchClose(conn, upstream);
    // The client's pipe may hold a FIN that arrived before upstream existed.
    for (const p of conn.pipes) p.pump();
  };

  let acceptedCount = 0;
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {
      // Seen again as 'close'.
    });
    if (closed) return void client.destroy();
    acceptedCount++;
    const conn: Conn = { client, upstream: null, pipes: [], teardownPending: false };
    conns.add(conn);
    conn.pipes.push(new Pipe(client, () => conn.upstream, () => current));
    watchClose(conn, client);
    // A partition does not stop the accept (the client is on our side of it), but nothing gets through to the server.
    if (current.kind !== 'blackhole') connectUpstream(conn);
  });
  server.on('error', () => {
    // Accept errors (e.g. EMFILE) only fail the connection concerned.
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };

  return {
    port,
    url: (scheme, path = '') => `${scheme}://127.0.0.1:${port}${path}`,
    mode: () => current,
    connections: () => [...conns].filter((c) => !c.client.destroyed).length,
    accepted: () => acceptedCount,
    set(mode) {
      if (mode.kind === 'delay' && !(mode.ms >= 0)) throw new RangeError(`delay needs ms >= 0, got ${mode.ms}`);
      if (mode.kind === 'throttle' && !(mode.bytesPerSecond > 0)) throw new RangeError(`throttle needs bytesPerSecond > 0, got ${mode.bytesPerSecond}`);
      if (mode.kind === 'reset') {
        for (const conn of [...conns]) {
          conns.delete(conn);
          for (const p of conn.pipes) p.stop();
          reset(conn.client);
          if (conn.upstream) reset(conn.upstream);
        }
        current = { kind: 'pass' };
        return;
      }
      current = mode;
      for (const conn of [...conns]) {
        if (mode.kind === 'blackhole') {
          for (const p of conn.pipes) p.dropData();
          continue;
        }
        if (conn.teardownPending || conn.client.destroyed) teardown(conn);
        else if (!conn.upstream) connectUpstream(conn);
        else for (const p of conn.pipes) p.pump();
      }
    },
    async close() {
      closed = true;
      for (const conn of [...conns]) teardown(conn);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A span of time during which a fault was in force. Times are epoch ms (`Date.now()`), comparable with run records. */
export interface FaultWindow {
  readonly kind: string;
  readonly start: number;
  /** null while the fault is still in force. */
  end: number | null;
  readonly detail?: string;
}

/** The faults a test injected, for the history checker to attribute duplicates to. */
export class FaultLog {
  private readonly list: FaultWindow[] = [];

  /** Open a window now. */
  begin(kind: string, detail?: string): FaultWindow {
    const w: FaultWindow = detail === undefined ? { kind, start: Date.now(), end: null } : { kind, start: Date.now(), end: null, detail };
    this.list.push(w);
    return w;
  }

  /** Close a window now (a second call keeps the first end). */
  end(w: FaultWindow): void {
    w.end ??= Date.now();
  }

  /** Run `fn` inside a window, closed however `fn` ends. */
  async during<T>(kind: string, fn: () => Promise<T>, detail?: string): Promise<T> {
    const w = this.begin(kind, detail);
    try {
      return await fn();
    } finally {
      this.end(w);
    }
  }

  windows(): readonly FaultWindow[] {
    return [...this.list];
  }
}
