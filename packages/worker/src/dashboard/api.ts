/**
 * The JSON API under `/api`: every route parses its input, calls the
 * DashboardService and returns its answer as JSON. Authentication and CSRF
 * were checked before (server.ts); errors become `{ error: { code, message } }`.
 *
 * Reads: GET overview, tasks (?id,name,state,worker,queue,from,to,text,sort,order,offset,limit),
 * tasks/:id, throughput (?since,bucket), workers, queues, dead-letters (?offset,limit),
 * schedules, broker, session ({ authenticated, csrfToken }), stream (SSE).
 * Actions (POST): tasks/revoke {ids, terminate?, signal?}, tasks/:id/resend,
 * workers/:hostname/:action {args?}, queues/:name/purge, dead-letters/requeue {ids},
 * dead-letters/discard {ids}, schedules/:name/enable, schedules/:name/disable.
 * A worker that does not answer an action is a 504 whose body has both the
 * error (`WORKER_NO_REPLY`) and the ActionResult.
 */
import type { Context, Hono } from 'hono';
import { ErrorCodes, parseDuration } from '@celeriac/core/spi';
import type { DashboardEnv } from './env.js';
import { DashboardError, HTTP_STATUS } from './errors.js';
import { parseTaskQuery } from './history/query.js';
import type { DashboardService, WorkerAction } from './model.js';
import { liveStream } from './sse.js';

type Ctx = Context<DashboardEnv>;

/** At most this many buckets in one throughput answer. */
const MAX_BUCKETS = 10_000;

/** The JSON body as an object; `{}` when there is none; ARGUMENT_INVALID when it is not a JSON object. */
async function body(c: Ctx): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** A time: epoch ms, ISO-8601, or a duration ago (`1h`, `30m`). */
function timeParam(name: string, raw: string, now: number): number {
  if (/^\d+$/.test(raw)) return Number(raw);
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(raw)) return now - parseDuration(raw);
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw DashboardError.query(name, `${JSON.stringify(raw)}: use epoch ms, an ISO-8601 time, or a duration ago such as 1h`);
  return t;
}

/** A length of time: ms, or a duration (`1m`). */
function durationParam(name: string, raw: string): number {
  const ms = /^\d+$/.test(raw) ? Number(raw) : /^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(raw) ? parseDuration(raw) : NaN;
  if (!Number.isFinite(ms) || ms < 1000) throw DashboardError.query(name, `${JSON.stringify(raw)}: use ms (at least 1000) or a duration such as 1m`);
  return ms;
}

function intParam(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw DashboardError.query(name, `${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
  return n;
}

const decode = (c: Ctx, name: string): string => c.req.param(name) ?? '';

export function mountApi(app: Hono<DashboardEnv>, service: DashboardService): void {
  app.get('/api/overview', async (c) => c.json(await service.overview()));
  app.get('/api/tasks', async (c) => c.json(await service.tasks(parseTaskQuery(new URL(c.req.url).searchParams))));
  app.get('/api/tasks/:id', async (c) => {
    const id = decode(c, 'id');
    const task = await service.task(id);
    if (!task) throw new DashboardError(ErrorCodes.TASK_UNKNOWN, `no task with id ${id} in the history`, { id });
    return c.json(task);
  });
  app.get('/api/throughput', async (c) => {
    const now = Date.now();
    const since = timeParam('since', c.req.query('since') ?? '1h', now);
    const bucket = durationParam('bucket', c.req.query('bucket') ?? '60000');
    if (since > now) throw DashboardError.query('since', 'is in the future');
    if ((now - since) / bucket > MAX_BUCKETS) throw DashboardError.query('bucket', `too small for this span: at most ${MAX_BUCKETS} buckets`);
    return c.json(await service.throughput(since, bucket));
  });
  app.get('/api/workers', async (c) => c.json(await service.workers()));
  app.get('/api/queues', async (c) => c.json(await service.queues()));
  app.get('/api/dead-letters', async (c) => {
    const offset = intParam('offset', c.req.query('offset'), 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam('limit', c.req.query('limit'), 50, 1, 1000);
    return c.json(await service.deadLetters({ offset, limit }));
  });
  app.get('/api/schedules', async (c) => c.json(await service.schedules()));
  app.get('/api/broker', (c) => c.json(service.broker()));
  // For scripts and single-page clients: whether this request is authenticated, and the CSRF token its POSTs need
  // (readable only same-origin: no CORS headers are ever sent).
  app.get('/api/session', (c) => c.json({ authenticated: c.get('authenticated'), csrfToken: c.get('csrfToken') }));
  app.get('/api/stream', (c) => liveStream(c, service));

  app.post('/api/tasks/revoke', async (c) => {
    const b = await body(c);
    if (b.terminate !== undefined && typeof b.terminate !== 'boolean') throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, 'terminate: expected true or false', { param: 'terminate' });
    if (b.signal !== undefined && typeof b.signal !== 'string') throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, 'signal: expected a signal name such as SIGTERM', { param: 'signal' });
    const options = { ...(b.terminate !== undefined ? { terminate: b.terminate } : {}), ...(b.signal !== undefined ? { signal: b.signal } : {}) };
    return c.json(await service.revoke(b.ids as string[], options));
  });
  app.post('/api/tasks/:id/resend', async (c) => c.json(await service.resend(decode(c, 'id'))));
  app.post('/api/workers/:hostname/:action', async (c) => {
    const b = await body(c);
    const args = b.args ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, 'args: expected an object', { param: 'args' });
    const result = await service.control(decode(c, 'hostname'), decode(c, 'action') as WorkerAction, args as Record<string, unknown>);
    const code = result.ok ? undefined : (result.details?.code as string | undefined);
    if (code === ErrorCodes.WORKER_NO_REPLY) return c.json({ error: { code, message: result.message }, result }, (HTTP_STATUS.WORKER_NO_REPLY ?? 504) as 504);
    return c.json(result);
  });
  app.post('/api/queues/:name/purge', async (c) => c.json(await service.purge(decode(c, 'name'))));
  app.post('/api/dead-letters/requeue', async (c) => c.json(await service.requeueDeadLetters((await body(c)).ids as string[])));
  app.post('/api/dead-letters/discard', async (c) => c.json(await service.discardDeadLetters((await body(c)).ids as string[])));
  app.post('/api/schedules/:name/enable', async (c) => c.json(await service.setScheduleEnabled(decode(c, 'name'), true)));
  app.post('/api/schedules/:name/disable', async (c) => c.json(await service.setScheduleEnabled(decode(c, 'name'), false)));
}
