/**
 * The dashboard's contracts: what the history store keeps, what the JSON API
 * and the pages show, and the service both of them read through. The HTTP
 * layer (`server.ts`), the pages (`ui/`), the history stores (`history/`) and
 * the fleet monitor (`fleet.ts`) meet only here.
 *
 * Times are epoch milliseconds unless a name says otherwise; text fields that
 * came from events are Python-style reprs (`(2, 3)`, `{'x': 1}`) as Celery's
 * events carry them, so Python and celeriac workers' tasks read the same.
 */
import type { CeleryEvent } from '@celeriac/core/spi';

/** States a task can be in the history: Celery's, plus SENT and RECEIVED from its events. */
export const TASK_STATES = ['PENDING', 'SENT', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States after which nothing more happens to a task (it may still be re-sent as a new one). */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED']);

/** One event in a task's life, as the detail page's timeline shows it. */
export interface TimelineEntry {
  /** The Celery event type: task-sent, task-received, task-started, task-retried, task-succeeded, task-failed, ... */
  readonly type: string;
  readonly at: number;
  /** The worker (or client) that sent the event. */
  readonly hostname: string | null;
  /** The event's other fields, minus the ones every event has. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A line a task wrote with `this.log` (carried by its final event's `logs` field). */
export interface TaskLogLine {
  readonly at: number;
  readonly level: string;
  readonly msg: string;
}

/** A task as the history keeps it: the list's row. */
export interface TaskRecord {
  readonly id: string;
  readonly name: string | null;
  readonly state: TaskState;
  /** Positional arguments, as their repr (Celery's `argsrepr`). */
  readonly args: string | null;
  readonly kwargs: string | null;
  /** The result's repr (SUCCESS) or the custom state's meta. */
  readonly result: string | null;
  /** The exception's repr, `ValueError('bad')` (FAILURE, RETRY). */
  readonly exception: string | null;
  readonly traceback: string | null;
  /** The node name of the worker that ran it, `celeriac@host`. */
  readonly worker: string | null;
  readonly queue: string | null;
  readonly retries: number;
  readonly sentAt: number | null;
  readonly receivedAt: number | null;
  readonly startedAt: number | null;
  /** When it reached a final state. */
  readonly endedAt: number | null;
  /** Seconds the task ran (the worker's measure). */
  readonly runtime: number | null;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly groupId: string | null;
  readonly eta: string | null;
  readonly expires: string | null;
  /** When the history last changed this record. */
  readonly updatedAt: number;
}

/** A task with its timeline, logs and canvas relations: the detail page. */
export interface TaskDetail extends TaskRecord {
  readonly timeline: readonly TimelineEntry[];
  readonly logs: readonly TaskLogLine[];
  /** Time between being received and started, ms; null until both are known. */
  readonly queueWaitMs: number | null;
  readonly relations: TaskRelations;
}

/** A related task: enough to show a link. */
export interface TaskRef {
  readonly id: string;
  readonly name: string | null;
  readonly state: TaskState;
}

export interface TaskRelations {
  readonly parent: TaskRef | null;
  readonly root: TaskRef | null;
  /** Tasks whose parent is this one (chain steps, links, subtasks). */
  readonly children: readonly TaskRef[];
  /** The other members of its group or chord header. */
  readonly group: readonly TaskRef[];
}

/** Columns the task list sorts by. */
export const TASK_SORT_KEYS = ['updatedAt', 'sentAt', 'receivedAt', 'startedAt', 'endedAt', 'name', 'state', 'runtime', 'worker', 'queue'] as const;
export type TaskSortKey = (typeof TASK_SORT_KEYS)[number];

/** A search of the history: every given field narrows it (AND). */
export interface TaskQuery {
  /** Exact id, or an id prefix of at least 4 characters. */
  readonly id?: string;
  /** Exact task name, or a prefix ending in `*` (`tasks.*`). */
  readonly name?: string;
  readonly states?: readonly TaskState[];
  readonly worker?: string;
  readonly queue?: string;
  /** Tasks last updated at or after / before these times. */
  readonly from?: number;
  readonly to?: number;
  /** Substring of args, kwargs, result or exception (case-insensitive). */
  readonly text?: string;
  readonly sort: TaskSortKey;
  readonly order: 'asc' | 'desc';
  readonly offset: number;
  /** 1–500. */
  readonly limit: number;
}

export interface TaskPage {
  readonly tasks: readonly TaskRecord[];
  /** How many tasks match the query in all. */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
}

/** Succeeded and failed tasks per time bucket, for the overview's chart. */
export interface ThroughputPoint {
  /** The bucket's start. */
  readonly at: number;
  readonly succeeded: number;
  readonly failed: number;
}

/** What the result backend knows of a task, as the history merges it. */
export interface BackendRecord {
  readonly id: string;
  readonly status: string;
  readonly result: string | null;
  readonly traceback: string | null;
  readonly endedAt: number | null;
  readonly name?: string | null;
  readonly args?: string | null;
  readonly kwargs?: string | null;
  readonly worker?: string | null;
  readonly queue?: string | null;
  readonly retries?: number | null;
}

/** Retention: the oldest tasks go first when either bound is passed. */
export interface RetentionPolicy {
  readonly maxTasks: number;
  readonly maxAgeMs: number;
}

/**
 * The persistent task history (SQLite file by default, or Redis): fed by
 * events and by the result backend, searched by the list page. Survives a
 * dashboard restart. Every method is safe to call concurrently.
 */
export interface HistoryStore {
  readonly kind: 'sqlite' | 'redis';
  /** Apply events in the order they arrived; task events update their task, others are ignored. */
  ingest(events: readonly CeleryEvent[]): Promise<void>;
  /** Merge what the result backend says (a final state there wins over a missing event). */
  mergeResult(record: BackendRecord): Promise<void>;
  list(query: TaskQuery): Promise<TaskPage>;
  get(id: string): Promise<TaskDetail | undefined>;
  /** Succeeded/failed counts per bucket of `bucketMs` from `since` until now. */
  throughput(since: number, bucketMs: number): Promise<ThroughputPoint[]>;
  /** Counts per state, of every stored task. */
  stateCounts(): Promise<Partial<Record<TaskState, number>>>;
  /** Failures that ended at or after `since`. */
  failuresSince(since: number): Promise<number>;
  /** Ids of tasks not in a final state, least recently updated first (the backend is polled for them). */
  unfinished(limit: number): Promise<string[]>;
  /** Apply the retention policy now; resolves to how many tasks were removed. */
  prune(policy: RetentionPolicy): Promise<number>;
  close(): Promise<void>;
}

/** A worker as the workers page shows it. */
export interface WorkerView {
  readonly hostname: string;
  readonly state: 'running' | 'suspended' | 'offline';
  /** `celeriac 0.1.0`, `py-celery 5.2.6`, ... from its heartbeat's sw_ident/sw_ver. */
  readonly software: string | null;
  /** Seconds since its last heartbeat (or any event); null when it never sent one. */
  readonly heartbeatAgoS: number | null;
  readonly pool: string | null;
  readonly concurrency: number | null;
  readonly active: number | null;
  readonly processed: number | null;
  readonly queues: readonly string[];
  readonly registered: readonly string[];
  readonly loadavg: readonly number[] | null;
  /** When it was last seen by an event or a control reply. */
  readonly lastSeen: number;
}

export interface QueueView {
  readonly name: string;
  readonly ready: number | null;
  /**
   * Delivered to workers and not yet acked: the sum of the workers' active and
   * reserved tasks from this queue (so it counts Python workers too); null when no worker answered.
   */
  readonly unacked: number | null;
  /** Change of `ready` per second since the previous sample (negative: draining). */
  readonly readyRate: number | null;
}

export interface QueuesView {
  readonly queues: readonly QueueView[];
  /** Delayed messages (countdown, eta, retries) broker-wide; null when the broker cannot count them. */
  readonly delayed: number | null;
  readonly deadLetters: number | null;
  readonly sampledAt: number;
}

export interface DeadLetterView {
  readonly id: string;
  readonly taskName: string | null;
  readonly queue: string;
  readonly reason: string;
  readonly message: string;
  readonly failedAt: number | null;
  readonly deliveryCount: number;
  readonly args: string | null;
  readonly kwargs: string | null;
  readonly traceback: string | null;
}

export interface ScheduleView {
  readonly name: string;
  readonly task: string;
  /** `every 10s`, `cron 0 * * * * (Europe/Paris)`, ... */
  readonly schedule: string;
  readonly enabled: boolean;
  readonly lastRunAt: number | null;
  readonly nextRunAt: number | null;
}

/** Whether the broker answers, for the banner. */
export interface BrokerStatus {
  /** The broker URL with its password replaced. */
  readonly url: string;
  readonly reachable: boolean;
  /** Why not, when not. */
  readonly error: string | null;
  readonly since: number;
}

export interface OverviewView {
  readonly broker: BrokerStatus;
  readonly workersOnline: number;
  readonly workers: number;
  readonly stateCounts: Partial<Record<TaskState, number>>;
  readonly failuresLastHour: number;
  /** The last hour in 1-minute buckets (the page may ask for other spans through the API). */
  readonly throughput: readonly ThroughputPoint[];
  readonly queues: QueuesView | null;
}

/** Pushed to pages over Server-Sent Events. */
export type LiveEvent =
  | { readonly kind: 'task'; readonly id: string; readonly name: string | null; readonly state: TaskState }
  | { readonly kind: 'worker'; readonly hostname: string; readonly state: WorkerView['state'] }
  | { readonly kind: 'queues'; readonly view: QueuesView }
  | { readonly kind: 'broker'; readonly status: BrokerStatus };

/** What an action did, per target (worker node name, task id, ...): a page shows each line. */
export interface ActionResult {
  readonly ok: boolean;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export const WORKER_ACTIONS = ['suspend', 'resume', 'pool_grow', 'pool_shrink', 'rate_limit', 'shutdown'] as const;
export type WorkerAction = (typeof WORKER_ACTIONS)[number];

/**
 * Everything the pages and the JSON API read and do, in one place; the HTTP
 * layer only parses, authorises and renders. Reads that need the broker
 * fail with a `BrokerUnavailableError` while it is down; history reads never do.
 */
export interface DashboardService {
  overview(): Promise<OverviewView>;
  tasks(query: TaskQuery): Promise<TaskPage>;
  task(id: string): Promise<TaskDetail | undefined>;
  throughput(since: number, bucketMs: number): Promise<ThroughputPoint[]>;
  workers(): Promise<WorkerView[]>;
  queues(): Promise<QueuesView>;
  deadLetters(page: { offset: number; limit: number }): Promise<{ total: number; items: DeadLetterView[] }>;
  schedules(): Promise<ScheduleView[]>;
  broker(): BrokerStatus;
  /** Live events until the returned function is called. */
  subscribe(onEvent: (event: LiveEvent) => void): () => void;

  revoke(ids: readonly string[], options?: { terminate?: boolean; signal?: string }): Promise<ActionResult>;
  /** Send the task again with the same name, arguments and queue; resolves to the new task's id. */
  resend(id: string): Promise<{ id: string }>;
  /** A remote-control command to one worker; a worker that does not answer is `{ ok: false, message }`. */
  control(worker: string, action: WorkerAction, args?: Record<string, unknown>): Promise<ActionResult>;
  purge(queue: string): Promise<{ purged: number }>;
  requeueDeadLetters(ids: readonly string[]): Promise<{ requeued: number }>;
  discardDeadLetters(ids: readonly string[]): Promise<{ discarded: number }>;
  setScheduleEnabled(name: string, enabled: boolean): Promise<ScheduleView>;
  close(): Promise<void>;
}
