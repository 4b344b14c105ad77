/**
 * `GET /api/stream`: the live feed as Server-Sent Events. Each LiveEvent is
 * one message whose `event:` is its kind (`task`, `worker`, `queues`,
 * `broker`) and whose `data:` is the LiveEvent as JSON (kind included). The
 * broker status is sent first, so a page's banner is right from the start;
 * a comment line every 15 s keeps proxies from closing an idle stream.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { DashboardEnv } from './env.js';
import type { DashboardService, LiveEvent } from './model.js';

export const KEEP_ALIVE_MS = 15_000;
/** Writes a client may fall behind by before its stream is ended (its EventSource reconnects and starts afresh). */
const MAX_BACKLOG = 1000;

/** Open streams, so a shutdown can end them (a server waits for its open responses otherwise). */
const open = new Set<() => void>();

export function closeStreams(): void {
  for (const end of [...open]) end();
}

export function liveStream(c: Context<DashboardEnv>, service: DashboardService): Response {
  return streamSSE(c, async (stream) => {
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    // Writes are chained so events reach the page in the order they happened.
    let chain: Promise<unknown> = Promise.resolve();
    let backlog = 0;
    const send = (write: () => Promise<unknown>) => {
      if (++backlog > MAX_BACKLOG) return finished();
      chain = chain
        .then(write)
        .then(() => backlog--)
        .catch(() => finished());
    };
    const onEvent = (e: LiveEvent) => send(() => stream.writeSSE({ event: e.kind, data: JSON.stringify(e) }));
    send(() => stream.writeSSE({ event: 'broker', data: JSON.stringify({ kind: 'broker', status: service.broker() }), retry: 3000 }));
    const unsubscribe = service.subscribe(onEvent);
    const keepAlive = setInterval(() => send(() => stream.write(': keep-alive\n\n')), KEEP_ALIVE_MS);
    keepAlive.unref();
    open.add(finished);
    stream.onAbort(finished);
    await done;
    open.delete(finished);
    clearInterval(keepAlive);
    unsubscribe();
    await chain;
  });
}
