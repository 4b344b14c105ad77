/**
 * An HTTP API in front of the tasks (hono on Node's http server):
 *
 *   POST /add       {"a": 2, "b": 3}  → 200 {"result": 5}             enqueue, wait for the result, answer it
 *   POST /jobs      {"rows": 200}     → 202 {"id": "...", "status": "/jobs/..."}   enqueue and answer at once
 *   GET  /jobs/:id                    → 200 {"id", "state", "progress"?, "result"?, "error"?}
 *
 * PORT (default 3000; 0 picks a free one), HOST (default 127.0.0.1). The worker runs the tasks: see README.md.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { TimeoutError } from '@celeriac/core';
import { add, app, buildReport, type Report } from './tasks.js';

const api = new Hono();

/** A JSON body, or undefined when it is not JSON. */
async function body(req: { json(): Promise<unknown> }): Promise<Record<string, unknown> | undefined> {
  const value = await req.json().catch(() => undefined);
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

api.post('/add', async (c) => {
  const input = await body(c.req);
  const { a, b } = input ?? {};
  if (typeof a !== 'number' || typeof b !== 'number') return c.json({ error: 'expected {"a": number, "b": number}' }, 400);
  try {
    // Send, then wait for the outcome, in one step. The timeout bounds how long the HTTP request waits:
    // no worker running, or all of them busy, is a 504 instead of a request that never ends.
    const result = await add.delay(a, b).get({ timeout: 5_000 });
    return c.json({ result });
  } catch (err) {
    if (err instanceof TimeoutError) return c.json({ error: 'no result within 5 s; is a worker running?' }, 504);
    throw err; // hono answers 500 (and a task's own failure would be a TaskError here)
  }
});

api.post('/jobs', async (c) => {
  const rows = (await body(c.req))?.rows;
  if (typeof rows !== 'number' || !Number.isInteger(rows) || rows < 1 || rows > 100_000) return c.json({ error: 'expected {"rows": 1..100000}' }, 400);
  // Resolves once the broker has the message: from then on the job survives a restart of this server.
  const job = await buildReport.delay(rows);
  const status = `/jobs/${job.id}`;
  return c.json({ id: job.id, status }, 202, { Location: status });
});

api.get('/jobs/:id', async (c) => {
  const id = c.req.param('id');
  const job = app.asyncResult<Report>(id);
  // One read of the stored state. An id nobody sent is PENDING, as in Celery: the store cannot tell
  // "not started yet" from "never sent".
  const meta = await job.meta();
  const state = meta?.status ?? 'PENDING';
  if (state === 'SUCCESS') return c.json({ id, state, result: meta?.result as Report });
  if (state === 'FAILURE' || state === 'REVOKED') {
    const error = await job.error();
    return c.json({ id, state, error: error ? `${error.excType}: ${error.excMessage}` : state });
  }
  if (state === 'PROGRESS') return c.json({ id, state, progress: meta?.result });
  return c.json({ id, state }); // PENDING, STARTED, RETRY
});

const server = serve({ fetch: api.fetch, port: Number(process.env.PORT ?? 3000), hostname: process.env.HOST ?? '127.0.0.1' }, (info) => {
  console.log(`listening on http://${info.address}:${info.port} (broker ${app.config.broker.redacted})`);
});

// Graceful shutdown: stop taking requests, let the open ones finish, then close the app's connections.
function shutdown(): void {
  server.close(() => {
    void app.close().finally(() => process.exit(0));
  });
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
