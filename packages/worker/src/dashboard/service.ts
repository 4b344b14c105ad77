/**
 * `DashboardService` (model.ts): the one place the JSON API and the pages
 * read and act through. History reads never touch the broker, so they keep
 * answering through an outage; broker reads fail with BROKER_UNAVAILABLE
 * (the reason, password redacted) while the monitor sees it down.
 */
import { BrokerUnavailableError, type CeleriacApp } from '@celeriac/core/spi';
import type { BeatSchedules } from '@celeriac/beat';
import type { BeatStore } from '@celeriac/beat';
import { DashboardActions } from './actions.js';
import { DashboardError } from './errors.js';
import { withTimeout } from './feed.js';
import type { FleetMonitor } from './fleet.js';
import type {
  ActionResult, BrokerStatus, DashboardService, DeadLetterView, HistoryStore, LiveEvent, OverviewView, QueuesView, ScheduleView,
  TaskDetail, TaskPage, TaskQuery, ThroughputPoint, WorkerAction, WorkerView,
} from './model.js';
import { deadLetterView, scheduleView } from './views.js';

const HOUR = 3_600_000;
/** A queue sample younger than this is served as is; older, the broker is asked now. */
const FRESH_SAMPLE_MS = 5000;
const BROKER_CALL_MS = 5000;

export class FleetDashboardService implements DashboardService {
  private readonly actions: DashboardActions;
  private schedulesApi: Promise<{ api: BeatSchedules; store: BeatStore }> | undefined;

  constructor(
    private readonly app: CeleriacApp,
    private readonly history: HistoryStore,
    private readonly fleet: FleetMonitor,
  ) {
    this.actions = new DashboardActions(app, history, fleet);
  }

  /** Fail fast, with the monitor's reason, while the broker is known to be down (no 5 s wait per request). */
  private needBroker(): void {
    const status = this.fleet.broker();
    if (!status.reachable) throw new BrokerUnavailableError(`the broker at ${status.url} is unreachable: ${status.error ?? 'unknown reason'}`, { url: status.url });
  }

  async overview(): Promise<OverviewView> {
    const now = Date.now();
    const [stateCounts, failuresLastHour, throughput] = await Promise.all([
      this.history.stateCounts(),
      this.history.failuresSince(now - HOUR),
      this.history.throughput(now - HOUR, 60_000),
    ]);
    const workers = this.fleet.workers.views();
    return {
      broker: this.fleet.broker(),
      workersOnline: workers.filter((w) => w.state !== 'offline').length,
      workers: workers.length,
      stateCounts,
      failuresLastHour,
      throughput,
      queues: this.fleet.queueSampler.last,
    };
  }

  tasks(query: TaskQuery): Promise<TaskPage> {
    return this.history.list(query);
  }

  task(id: string): Promise<TaskDetail | undefined> {
    return this.history.get(id);
  }

  throughput(since: number, bucketMs: number): Promise<ThroughputPoint[]> {
    return this.history.throughput(since, bucketMs);
  }

  async workers(): Promise<WorkerView[]> {
    return this.fleet.workers.views();
  }

  async queues(): Promise<QueuesView> {
    const last = this.fleet.queueSampler.last;
    if (last && Date.now() - last.sampledAt < FRESH_SAMPLE_MS && this.fleet.broker().reachable) return last;
    this.needBroker();
    // The monitor samples every few seconds; a stale sample means it is between probes: the last one is still the best answer.
    if (last) return last;
    throw new BrokerUnavailableError('no queue sample yet', {});
  }

  async deadLetters(page: { offset: number; limit: number }): Promise<{ total: number; items: DeadLetterView[] }> {
    this.needBroker();
    const transport = await withTimeout(this.app.transport(), BROKER_CALL_MS, 'connecting to the broker');
    const [records, total] = await withTimeout(Promise.all([transport.listDeadLetters(page), transport.deadLetterCount()]), BROKER_CALL_MS, 'reading dead letters');
    return { total, items: records.map(deadLetterView) };
  }

  /** Beat's store is opened on first use: a dashboard for a fleet without beat never opens it. */
  private beat(): Promise<{ api: BeatSchedules; store: BeatStore }> {
    if (!this.schedulesApi) {
      const opening = (async () => {
        const { BeatSchedules: Schedules, openBeatStore } = await import('@celeriac/beat');
        const store = await openBeatStore(this.app);
        return { api: new Schedules(store, () => this.app.beat.entries(), this.app.beat.timezone), store };
      })();
      // A store that failed to open (Redis down) is tried afresh next time.
      opening.catch(() => {
        if (this.schedulesApi === opening) this.schedulesApi = undefined;
      });
      this.schedulesApi = opening;
    }
    return this.schedulesApi;
  }

  async schedules(): Promise<ScheduleView[]> {
    const { api } = await this.beat();
    const views = await withTimeout(api.list(), BROKER_CALL_MS, 'reading beat schedules');
    return views.map((v) => scheduleView(v, this.app.beat.timezone)).sort((a, b) => a.name.localeCompare(b.name));
  }

  broker(): BrokerStatus {
    return this.fleet.broker();
  }

  subscribe(onEvent: (event: LiveEvent) => void): () => void {
    return this.fleet.subscribe(onEvent);
  }

  async revoke(ids: readonly string[], options?: { terminate?: boolean; signal?: string }): Promise<ActionResult> {
    this.needBroker();
    return this.actions.revoke(ids, options);
  }

  async resend(id: string): Promise<{ id: string }> {
    this.needBroker();
    return this.actions.resend(id);
  }

  async control(worker: string, action: WorkerAction, args?: Record<string, unknown>): Promise<ActionResult> {
    this.needBroker();
    return this.actions.control(worker, action, args);
  }

  async purge(queue: string): Promise<{ purged: number }> {
    this.needBroker();
    return this.actions.purge(queue);
  }

  async requeueDeadLetters(ids: readonly string[]): Promise<{ requeued: number }> {
    this.needBroker();
    return this.actions.requeueDeadLetters(ids);
  }

  async discardDeadLetters(ids: readonly string[]): Promise<{ discarded: number }> {
    this.needBroker();
    return this.actions.discardDeadLetters(ids);
  }

  async setScheduleEnabled(name: string, enabled: boolean): Promise<ScheduleView> {
    const { api } = await this.beat();
    if (enabled) await api.enable(name);
    else await api.disable(name);
    const view = (await this.schedules()).find((s) => s.name === name);
    if (!view) throw new DashboardError('BEAT_ENTRY_UNKNOWN', `No beat entry named ${JSON.stringify(name)}`, { entryName: name });
    return view;
  }

  /** Close beat's store if it was opened (the monitor, history and app are closed by their owner). */
  async close(): Promise<void> {
    const opening = this.schedulesApi;
    this.schedulesApi = undefined;
    if (opening) await opening.then(({ store }) => store.close()).catch(() => undefined);
  }
}
