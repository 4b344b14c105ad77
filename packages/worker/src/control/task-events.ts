import { loadavg } from 'node:os';
import { pyRepr, truncate, type EventDispatcher } from '@celeriac/core/spi';
import type { WorkerEventMap } from '../events.js';
import type { ControlledWorker as Worker } from './controlled.js';

/** Celery's heartbeat interval (seconds): receivers call a worker offline after missing a few. */
const HEARTBEAT_S = 2;
const SOFTWARE = { sw_ident: 'celeriac', sw_ver: '0.1.0', sw_sys: process.platform };

/** An exception as Celery's events carry it: its repr, `Exception('failed')`. */
function excRepr(exc: unknown): string {
  const e = exc as { exc_type?: unknown; exc_message?: unknown } | null;
  if (!e || typeof e.exc_type !== 'string') return pyRepr(exc);
  const args = Array.isArray(e.exc_message) ? e.exc_message : [e.exc_message];
  return `${e.exc_type}(${args.map(pyRepr).join(', ')})`;
}

type Handlers = { [K in keyof WorkerEventMap]?: (...args: WorkerEventMap[K]) => void };

/**
 * Turns the worker's local task events into Celery's `celeryev` events
 * (task-received ... task-rejected, worker-online / heartbeat every 2 s /
 * offline) while events are enabled. Off by default, as in Celery.
 */
export class TaskEventPublisher {
  private timer: NodeJS.Timeout | undefined;
  private readonly handlers: Handlers;
  /** When the last worker-heartbeat went out (epoch ms), for `inspect stats` and `celeriac status`. */
  lastHeartbeatAt: number | null = null;

  constructor(
    private readonly worker: Worker,
    private readonly dispatcher: EventDispatcher,
  ) {
    const send = (type: string, fields: Record<string, unknown>) => this.dispatcher.send(type, fields);
    this.handlers = {
      // `queue` and `group` go beyond Celery's fields (its receivers ignore extra ones): the dashboard
      // files a task under its queue and group without waiting for a task-sent the client may never send.
      'task-received': ({ id, name, headers: h, queue }) =>
        send('task-received', { uuid: id, name, args: h.argsrepr, kwargs: h.kwargsrepr, root_id: h.root_id, parent_id: h.parent_id, retries: h.retries, eta: h.eta, expires: h.expires, queue, group: h.group }),
      'task-started': ({ id }) => send('task-started', { uuid: id, pid: process.pid }),
      // A final event carries the lines the task logged (`logs`, another field beyond Celery's).
      'task-succeeded': ({ id, result, runtime }) => send('task-succeeded', { uuid: id, result: truncate(pyRepr(result), 1024), runtime, ...this.logsOf(id) }),
      'task-failed': ({ id, exception, traceback }) => send('task-failed', { uuid: id, exception: excRepr(exception), traceback, ...this.logsOf(id) }),
      'task-retried': ({ id, exception, traceback }) => send('task-retried', { uuid: id, exception: excRepr(exception), traceback, ...this.logsOf(id) }),
      'task-revoked': ({ id, reason }) => send('task-revoked', { uuid: id, terminated: false, signum: null, expired: reason === 'expired' }),
      'task-rejected': ({ id }) => send('task-rejected', { uuid: id, requeue: false }),
    };
  }

  private logsOf(id: string): { logs?: unknown[] } {
    const logs = this.worker.events.logs.take(id);
    return logs ? { logs } : {};
  }

  private workerFields(): Record<string, unknown> {
    return { freq: HEARTBEAT_S, active: this.worker.state.running.size, processed: [...this.worker.state.totals.values()].reduce((a, b) => a + b, 0), loadavg: loadavg().map((n) => Math.round(n * 100) / 100), ...SOFTWARE };
  }

  start(): void {
    if (this.dispatcher.enabled) return;
    this.dispatcher.enabled = true;
    this.worker.events.logs.recording = true;
    for (const [name, fn] of Object.entries(this.handlers)) this.worker.events.on(name as keyof WorkerEventMap, fn);
    this.dispatcher.send('worker-online', this.workerFields());
    this.timer = setInterval(() => this.heartbeat(), HEARTBEAT_S * 1000);
    this.timer.unref();
  }

  heartbeat(): void {
    this.lastHeartbeatAt = Date.now();
    this.dispatcher.send('worker-heartbeat', this.workerFields());
  }

  stop(): void {
    if (!this.dispatcher.enabled) return;
    clearInterval(this.timer);
    for (const [name, fn] of Object.entries(this.handlers)) this.worker.events.off(name as keyof WorkerEventMap, fn);
    this.dispatcher.enabled = false;
    this.worker.events.logs.recording = false;
    this.worker.events.logs.clear();
  }

  /** On shutdown: `worker-offline`, sent and awaited, so receivers drop the worker at once. */
  async close(): Promise<void> {
    if (!this.dispatcher.enabled) return;
    this.stop();
    await this.dispatcher.publish('worker-offline', this.workerFields()).catch(() => undefined);
  }
}
