/**
 * From Celery events to the history's task records: the pure part both stores share. An event
 * becomes a {@link TaskPatch}; {@link mergeTask} folds a patch into what is known of the task.
 *
 * Events from different workers (and the client's task-sent) arrive in any order, so a patch
 * never simply overwrites. The rules, after Celery's `events.state.Task.event`:
 *  - a final state (SUCCESS, FAILURE, REVOKED, REJECTED) is never replaced by a non-final one;
 *  - between final states the stronger one wins (SUCCESS > FAILURE > REVOKED > REJECTED);
 *  - between non-final states the later phase wins (SENT < RECEIVED < STARTED), except RETRY,
 *    which starts the cycle again: when RETRY is on either side the later timestamp wins;
 *  - an event that does not win still fills fields that are unknown, but never overwrites;
 *  - no event erases a known value with null (a patch only carries the values it knows).
 */
import { pyRepr, type CeleryEvent } from '@celeriac/core/spi';
import { FINAL_STATES, type BackendRecord, type TaskLogLine, type TaskRecord, type TaskState, type TimelineEntry } from '../model.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The record fields an event or a backend record can say something about. */
export type TaskFields = Omit<TaskRecord, 'id' | 'state' | 'updatedAt'>;

/** A task record plus what the merge needs to order later events: when its state was set. */
export interface StoredTask extends TaskRecord {
  readonly stateAt: number;
}

/** What one event (or backend record) says about one task. */
export interface TaskPatch {
  readonly id: string;
  /** When it happened (epoch ms, from the event's own timestamp). */
  readonly at: number;
  /** The state it moves the task to, or null when it only adds information. */
  readonly state: TaskState | null;
  /** Values it knows (never null): applied when the patch wins, else only where unknown. */
  readonly set: Partial<TaskFields>;
  /** When true the state applies only to a task the history did not know (backend non-final states). */
  readonly stateIfNew?: boolean;
  /** Values applied whatever the state rules say (a custom state's latest meta). */
  readonly always?: Partial<TaskFields> | undefined;
  readonly logs: readonly TaskLogLine[];
  readonly timeline: TimelineEntry | null;
}

/** Timeline entries kept per task, and log lines kept per task (the most recent ones). */
export const MAX_TIMELINE = 50;
export const MAX_LOGS = 200;

const EVENT_STATES: Readonly<Record<string, TaskState>> = {
  'task-sent': 'SENT',
  'task-received': 'RECEIVED',
  'task-started': 'STARTED',
  'task-succeeded': 'SUCCESS',
  'task-failed': 'FAILURE',
  'task-retried': 'RETRY',
  'task-revoked': 'REVOKED',
  'task-rejected': 'REJECTED',
};

/** Strength of each state; final states rank above every non-final one. */
const RANK: Readonly<Record<TaskState, number>> = { PENDING: 0, SENT: 1, RECEIVED: 2, RETRY: 3, STARTED: 4, REJECTED: 10, REVOKED: 11, FAILURE: 12, SUCCESS: 13 };

/** Fields every event has: left out of a timeline entry's `fields`. `pid` is kept for task-started (the pool process). */
const COMMON = new Set(['type', 'hostname', 'timestamp', 'clock', 'utcoffset', 'uuid', 'logs', 'local_received']);

const text = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : typeof v === 'string' ? v : pyRepr(v));
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** An event's time in epoch ms: its `timestamp` (unix seconds), else now. */
export function eventTime(e: CeleryEvent): number {
  const ts = num(e.timestamp);
  return ts === undefined ? Date.now() : Math.round(ts * 1000);
}

function logsOf(raw: unknown, fallbackAt: number): TaskLogLine[] {
  if (!Array.isArray(raw)) return [];
  const out: TaskLogLine[] = [];
  for (const line of raw as unknown[]) {
    if (!line || typeof line !== 'object') continue;
    const l = line as Record<string, unknown>;
    const msg = text(l.msg);
    if (msg === undefined) continue;
    out.push({ at: num(l.at) ?? fallbackAt, level: text(l.level) ?? 'info', msg });
  }
  return out;
}

/** Drop the undefined entries, so a patch carries only values it knows. */
function known(fields: { [K in keyof TaskFields]?: TaskFields[K] | undefined }): Partial<TaskFields> {
  const out: Partial<Mutable<TaskFields>> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** The patch a task event makes, or undefined for events that are not about a task (worker-*, malformed). */
export function eventToPatch(e: CeleryEvent): TaskPatch | undefined {
  if (typeof e.type !== 'string' || !e.type.startsWith('task-') || typeof e.uuid !== 'string' || !e.uuid) return undefined;
  const at = eventTime(e);
  const hostname = typeof e.hostname === 'string' ? e.hostname : null;
  let state: TaskState | null = EVENT_STATES[e.type] ?? null;
  // A rejection with requeue puts the message back on its queue: the task is not over.
  if (state === 'REJECTED' && e.requeue === true) state = null;
  const common = { name: text(e.name), args: text(e.args), kwargs: text(e.kwargs), rootId: text(e.root_id), parentId: text(e.parent_id), retries: num(e.retries), eta: text(e.eta), expires: text(e.expires) };
  let set: Partial<TaskFields>;
  switch (e.type) {
    case 'task-sent': // its hostname is the client's, not a worker's
      set = known({ ...common, queue: text(e.queue) ?? text(e.routing_key), sentAt: at });
      break;
    case 'task-received':
      set = known({ ...common, queue: text(e.queue), groupId: text(e.group), worker: hostname, receivedAt: at });
      break;
    case 'task-started':
      set = known({ worker: hostname, startedAt: at });
      break;
    case 'task-succeeded':
      set = known({ worker: hostname, result: text(e.result), runtime: num(e.runtime), endedAt: at });
      break;
    case 'task-failed':
      set = known({ worker: hostname, exception: text(e.exception), traceback: text(e.traceback), endedAt: at });
      break;
    case 'task-retried':
      set = known({ worker: hostname, exception: text(e.exception), traceback: text(e.traceback) });
      break;
    default: // revoked, rejected, custom task-* events
      set = known({ endedAt: state ? at : undefined });
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (!COMMON.has(k) && !(k === 'pid' && e.type !== 'task-started')) fields[k] = v;
  return { id: e.uuid, at, state, set, logs: logsOf(e.logs, at), timeline: { type: e.type, at, hostname, fields } };
}

/** Whether a patch moving to `next` at `at` wins over the task's current state. */
export function stateWins(current: Pick<StoredTask, 'state' | 'stateAt'>, next: TaskState, at: number): boolean {
  const curFinal = FINAL_STATES.has(current.state);
  const nextFinal = FINAL_STATES.has(next);
  if (curFinal || nextFinal) return nextFinal && (!curFinal || RANK[next] > RANK[current.state] || (next === current.state && at >= current.stateAt));
  if (next === 'RETRY' || current.state === 'RETRY') return at >= current.stateAt;
  return RANK[next] > RANK[current.state] || (next === current.state && at >= current.stateAt);
}

const EMPTY: Omit<StoredTask, 'id' | 'updatedAt' | 'stateAt'> = {
  name: null, state: 'PENDING', args: null, kwargs: null, result: null, exception: null, traceback: null, worker: null, queue: null, retries: 0,
  sentAt: null, receivedAt: null, startedAt: null, endedAt: null, runtime: null, rootId: null, parentId: null, groupId: null, eta: null, expires: null,
};

/** Fold `patch` into `current` (undefined: a task the history has not seen). Pure. */
export function mergeTask(current: StoredTask | undefined, patch: TaskPatch): StoredTask {
  const base: StoredTask = current ?? { ...EMPTY, id: patch.id, updatedAt: patch.at, stateAt: Number.NEGATIVE_INFINITY };
  const to = patch.state;
  const wins = to !== null && (!patch.stateIfNew || current === undefined) && stateWins(base, to, patch.at);
  const next: Mutable<StoredTask> = { ...base, updatedAt: Math.max(base.updatedAt, patch.at) };
  if (wins) {
    next.state = to;
    next.stateAt = patch.at;
  }
  for (const [k, v] of Object.entries(patch.set) as [keyof TaskFields, unknown][]) {
    if (k === 'retries') next.retries = Math.max(next.retries, v as number);
    else if (wins || next[k] === null) (next as Record<string, unknown>)[k] = v;
  }
  if (patch.always) Object.assign(next, patch.always);
  if (!Number.isFinite(next.stateAt)) next.stateAt = patch.at;
  return next;
}

const STATES: ReadonlySet<string> = new Set(Object.values(EVENT_STATES));

/**
 * The patch a result-backend record makes. A final status there settles a task whose final event
 * was lost; a non-final one only seeds a task the history did not know (events say more, sooner);
 * a custom status (PROGRESS, ...) leaves the state alone and refreshes the result with its meta.
 */
export function backendToPatch(record: BackendRecord): TaskPatch {
  // Whole ms, as event times are: the Redis list bisects integer scores.
  const at = Math.round(record.endedAt ?? Date.now());
  const state = STATES.has(record.status) ? (record.status as TaskState) : null;
  const final = state !== null && FINAL_STATES.has(state);
  const custom = state === null && record.status !== 'PENDING';
  // The backend keeps the exception as the result of these (TaskRevokedError for a revoke).
  const raised = state === 'FAILURE' || state === 'RETRY' || state === 'REVOKED';
  const set = known({
    name: record.name ?? undefined,
    args: record.args ?? undefined,
    kwargs: record.kwargs ?? undefined,
    worker: record.worker ?? undefined,
    queue: record.queue ?? undefined,
    retries: record.retries ?? undefined,
    result: raised ? undefined : (record.result ?? undefined),
    exception: raised ? (record.result ?? undefined) : undefined,
    traceback: record.traceback ?? undefined,
    endedAt: final ? at : undefined,
  });
  return { id: record.id, at, state, set, stateIfNew: !final, always: custom && record.result !== null ? { result: record.result } : undefined, logs: [], timeline: null };
}
