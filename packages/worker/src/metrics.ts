import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { parseCeleryIso } from '@celeriac/core/spi';
import type { Worker } from './worker.js';

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Prometheus metrics of one worker, fed by its local task events:
 * `celeriac_tasks_total{task,state}`, `celeriac_task_runtime_seconds{task}`,
 * `celeriac_task_queue_wait_seconds{task}` (from the message's eta when it has
 * one, else from when this worker received it, to its start),
 * `celeriac_queue_length{queue}` (read from the broker at scrape time),
 * `celeriac_worker_active_tasks`, and Node's process metrics.
 */
export function workerMetrics(worker: Worker): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: worker.hostname });
  collectDefaultMetrics({ register: registry, prefix: 'celeriac_process_' });
  const tasks = new Counter({ name: 'celeriac_tasks_total', help: 'Tasks by name and state reached', labelNames: ['task', 'state'], registers: [registry] });
  const runtime = new Histogram({ name: 'celeriac_task_runtime_seconds', help: 'Task run time', labelNames: ['task'], buckets: SECONDS, registers: [registry] });
  const wait = new Histogram({ name: 'celeriac_task_queue_wait_seconds', help: 'Wait before a task started', labelNames: ['task'], buckets: SECONDS, registers: [registry] });
  new Gauge({ name: 'celeriac_worker_active_tasks', help: 'Tasks running now', registers: [registry], collect() { this.set(worker.running.size); } });
  new Gauge({
    name: 'celeriac_queue_length',
    help: 'Ready messages in each consumed queue',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const transport = worker.transport;
      if (!transport) return;
      this.reset();
      for (const queue of worker.queues) this.set({ queue }, await transport.length(queue).catch(() => NaN));
    },
  });
  const received = new Map<string, number>();
  const started = new Map<string, number>();
  const e = worker.events;
  e.on('task-received', ({ id, name, headers }) => {
    tasks.inc({ task: name, state: 'received' });
    const eta = headers.eta ? parseCeleryIso(headers.eta) : NaN;
    received.set(id, Number.isFinite(eta) ? eta : Date.now());
  });
  e.on('task-started', ({ id, name }) => {
    tasks.inc({ task: name, state: 'started' });
    const at = received.get(id);
    received.delete(id);
    if (at !== undefined) wait.observe({ task: name }, Math.max(0, Date.now() - at) / 1000);
    started.set(id, performance.now());
  });
  const ended = (id: string, name: string, state: string): void => {
    tasks.inc({ task: name, state });
    received.delete(id);
    const at = started.get(id);
    started.delete(id);
    if (at !== undefined) runtime.observe({ task: name }, (performance.now() - at) / 1000);
  };
  e.on('task-succeeded', ({ id, name }) => ended(id, name, 'succeeded'));
  e.on('task-failed', ({ id, name }) => ended(id, name, 'failed'));
  e.on('task-retried', ({ id, name }) => ended(id, name, 'retried'));
  e.on('task-revoked', ({ id, name }) => ended(id, name, 'revoked'));
  e.on('task-rejected', ({ id, name }) => ended(id ?? '', name ?? 'unknown', 'rejected'));
  return registry;
}

/** Serve `GET /metrics` on `port` (0: any free port) on all interfaces; resolves with its URL and a close function. */
export async function serveMetrics(worker: Worker, port: number, host = '0.0.0.0'): Promise<{ url: string; close: () => Promise<void> }> {
  const registry = workerMetrics(worker);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
