/**
 * The task list's query string → a {@link TaskQuery}: every parameter checked, and the first one
 * that cannot be used named in a `QUERY_INVALID` {@link DashboardError} (HTTP 400), so a page or a
 * script learns which parameter to fix rather than getting an empty list.
 */
import { DashboardError } from '../errors.js';
import { TASK_SORT_KEYS, TASK_STATES, type TaskQuery, type TaskSortKey, type TaskState } from '../model.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Parameters {@link parseTaskQuery} reads; any other parameter is left to the caller. */
export const TASK_QUERY_PARAMS = ['id', 'name', 'state', 'worker', 'queue', 'from', 'to', 'text', 'sort', 'order', 'offset', 'limit'] as const;

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
/** Shortest id prefix: shorter ones match too much to be a lookup. */
export const MIN_ID_PREFIX = 4;
/** Longest search text (a bound on the cost of one search). */
export const MAX_TEXT = 200;

const STATES: ReadonlySet<string> = new Set(TASK_STATES);
const SORTS: ReadonlySet<string> = new Set(TASK_SORT_KEYS);
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** One value of a parameter: absent when missing or empty; repeated parameters are an error (except `state`). */
function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw DashboardError.query(name, 'given more than once');
  const v = all[0]?.trim();
  return v ? v : undefined;
}

/** A time: epoch milliseconds (digits) or an ISO-8601 date or date-time (UTC unless it says otherwise). */
function time(name: string, given: string): number {
  // An unencoded `+` of a zone offset arrives as a space: read `...T10:00:00 01:00` as `+01:00`.
  const raw = given.replace(/^(\d{4}-\d{2}-\d{2}[T ][\d:.]+) (\d{2}:?\d{2})$/, '$1+$2');
  if (/^\d+$/.test(raw)) {
    const ms = Number(raw);
    if (Number.isSafeInteger(ms)) return ms;
  } else if (ISO.test(raw)) {
    // A date-time with no zone is read as UTC, as the rest of the dashboard shows times.
    const iso = /[T ]\d{2}:\d{2}/.test(raw) && !/(Z|[+-]\d{2}:?\d{2})$/.test(raw) ? `${raw.replace(' ', 'T')}Z` : raw.replace(' ', 'T');
    const ms = Date.parse(iso);
    if (Number.isFinite(ms)) return ms;
  }
  throw DashboardError.query(name, `${JSON.stringify(raw)} is neither an ISO-8601 time (2026-01-31T12:00:00Z) nor epoch milliseconds`);
}

function integer(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw) && !/^-\d+$/.test(raw)) throw DashboardError.query(name, `${JSON.stringify(raw)} is not an integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw DashboardError.query(name, `${n} is outside ${min}–${max === Number.MAX_SAFE_INTEGER ? '∞' : max}`);
  return n;
}

/**
 * Parse the task list's query string. Parameters: `id` (id or prefix of ≥ 4 characters), `name`
 * (exact, or a prefix ending in `*`), `state` (comma-separated, repeatable, case-insensitive),
 * `worker`, `queue`, `from` / `to` (ISO-8601 or epoch ms, on `updatedAt`), `text` (substring of
 * args, kwargs, result or exception), `sort` (a {@link TaskSortKey}, default `updatedAt`), `order`
 * (`asc` | `desc`, default `desc`), `offset` (≥ 0, default 0), `limit` (1–500, default 50).
 * Empty values count as absent; parameters it does not know are ignored.
 *
 * @throws DashboardError `QUERY_INVALID` naming the first parameter it cannot use.
 */
export function parseTaskQuery(params: URLSearchParams): TaskQuery {
  const q: Mutable<TaskQuery> = { sort: 'updatedAt', order: 'desc', offset: 0, limit: DEFAULT_LIMIT };
  const id = single(params, 'id');
  if (id !== undefined) {
    if (id.length < MIN_ID_PREFIX) throw DashboardError.query('id', `an id prefix needs at least ${MIN_ID_PREFIX} characters, got ${JSON.stringify(id)}`);
    q.id = id;
  }
  const name = single(params, 'name');
  if (name !== undefined) {
    if (name.slice(0, -1).includes('*') || name === '*') throw DashboardError.query('name', `${JSON.stringify(name)}: use an exact name or a prefix ending in * (tasks.*)`);
    q.name = name;
  }
  const states = params.getAll('state').flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean);
  if (states.length) {
    const unknown = states.find((s) => !STATES.has(s));
    if (unknown !== undefined) throw DashboardError.query('state', `unknown state ${JSON.stringify(unknown)}; use ${TASK_STATES.join(', ')}`);
    q.states = [...new Set(states)] as TaskState[];
  }
  const worker = single(params, 'worker');
  if (worker !== undefined) q.worker = worker;
  const queue = single(params, 'queue');
  if (queue !== undefined) q.queue = queue;
  const from = single(params, 'from');
  if (from !== undefined) q.from = time('from', from);
  const to = single(params, 'to');
  if (to !== undefined) q.to = time('to', to);
  if (q.from !== undefined && q.to !== undefined && q.from > q.to) throw DashboardError.query('from', 'is after to');
  const textValue = single(params, 'text');
  if (textValue !== undefined) {
    if (textValue.length > MAX_TEXT) throw DashboardError.query('text', `longer than ${MAX_TEXT} characters`);
    q.text = textValue;
  }
  const sort = single(params, 'sort');
  if (sort !== undefined) {
    if (!SORTS.has(sort)) throw DashboardError.query('sort', `unknown sort key ${JSON.stringify(sort)}; use ${TASK_SORT_KEYS.join(', ')}`);
    q.sort = sort as TaskSortKey;
  }
  const order = single(params, 'order')?.toLowerCase();
  if (order !== undefined) {
    if (order !== 'asc' && order !== 'desc') throw DashboardError.query('order', `${JSON.stringify(order)}: use asc or desc`);
    q.order = order;
  }
  const offset = single(params, 'offset');
  if (offset !== undefined) q.offset = integer('offset', offset, 0, Number.MAX_SAFE_INTEGER);
  const limit = single(params, 'limit');
  if (limit !== undefined) q.limit = integer('limit', limit, 1, MAX_LIMIT);
  return q;
}
