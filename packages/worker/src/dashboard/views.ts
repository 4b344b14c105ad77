/**
 * Conversions from what the broker, the result backend and beat hold to the
 * views the API serves (model.ts). Pure functions: no I/O here.
 */
import { parseCeleryIso, pyRepr, truncate, type BeatEntry, type DeadLetterRecord, type ResultMeta } from '@celeriac/core/spi';
import type { EntryView } from '@celeriac/beat';
import type { BackendRecord, DeadLetterView, ScheduleView } from './model.js';

/** Results and exceptions are shown as text, at most this long (a page is not a dump). */
const MAX_TEXT = 4096;

/** An encoded exception as Celery's events show it: `ValueError('bad')`. */
export function exceptionRepr(value: unknown): string {
  const e = value as { exc_type?: unknown; exc_message?: unknown } | null;
  if (!e || typeof e !== 'object' || typeof e.exc_type !== 'string') return truncate(pyRepr(value), MAX_TEXT);
  const args = Array.isArray(e.exc_message) ? e.exc_message : [e.exc_message];
  return truncate(`${e.exc_type}(${args.map((a) => pyRepr(a)).join(', ')})`, MAX_TEXT);
}

const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * A result-backend record as the history merges it. Celery's extended results
 * (`result_extended=True`) also carry name, args, kwargs, worker, queue and
 * retries; they are passed on when present.
 */
export function backendRecord(meta: ResultMeta): BackendRecord {
  const m = meta as ResultMeta & Record<string, unknown>;
  const failed = meta.status === 'FAILURE' || meta.status === 'REVOKED' || meta.status === 'RETRY';
  const ended = meta.date_done ? parseCeleryIso(meta.date_done) : NaN;
  const extended = {
    ...(typeof m.name === 'string' ? { name: m.name } : {}),
    ...(m.args !== undefined && m.args !== null ? { args: typeof m.args === 'string' ? m.args : pyRepr(m.args) } : {}),
    ...(m.kwargs !== undefined && m.kwargs !== null ? { kwargs: typeof m.kwargs === 'string' ? m.kwargs : pyRepr(m.kwargs) } : {}),
    ...(typeof m.worker === 'string' ? { worker: m.worker } : {}),
    ...(typeof m.queue === 'string' ? { queue: m.queue } : {}),
    ...(typeof m.retries === 'number' ? { retries: m.retries } : {}),
  };
  return {
    id: meta.task_id,
    status: meta.status,
    result: meta.result === null || meta.result === undefined ? null : failed ? exceptionRepr(meta.result) : truncate(pyRepr(meta.result), MAX_TEXT),
    traceback: meta.traceback ?? null,
    endedAt: Number.isFinite(ended) ? ended : null,
    ...extended,
  };
}

/** A dead letter for the queues page: the wire message's args reprs, never the raw message. */
export function deadLetterView(r: DeadLetterRecord): DeadLetterView {
  const h = r.wire.headers as Record<string, unknown>;
  return {
    id: r.id,
    taskName: r.taskName,
    queue: r.queue,
    reason: r.reason,
    message: r.message,
    failedAt: Number.isFinite(r.failedAt) ? r.failedAt : null,
    deliveryCount: r.deliveryCount,
    args: strOrNull(h.argsrepr),
    kwargs: strOrNull(h.kwargsrepr),
    traceback: r.traceback,
  };
}

/** `90000` → `1m30s`; whole units only, ms when below a second. */
export function humanMs(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms} ms`;
  let s = ms / 1000;
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join('');
}

/** A schedule spec as one phrase: `every 10s`, `cron 0 * * * * (Europe/Paris)`, `once at 2026-…`. */
export function describeSchedule(spec: BeatEntry['schedule'], timezone: string | undefined): string {
  if ('cron' in spec) return `cron ${spec.cron} (${spec.tz ?? timezone ?? 'UTC'})`;
  if ('every' in spec) return `every ${humanMs(spec.every)}`;
  return `once at ${new Date(spec.at).toISOString()}`;
}

export function scheduleView(v: EntryView, timezone: string | undefined): ScheduleView {
  return {
    name: v.entry.name,
    task: v.entry.task,
    schedule: describeSchedule(v.entry.schedule, timezone),
    enabled: v.entry.enabled,
    lastRunAt: v.state?.lastRunAt ?? null,
    nextRunAt: v.state?.nextRunAt ?? null,
  };
}
