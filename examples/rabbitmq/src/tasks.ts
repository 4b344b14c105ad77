/**
 * The tasks of the RabbitMQ example, routed to two queues:
 *
 *   orders   the default queue: `orders.place`, quick and plentiful
 *   reports  `reports.*`, slow, served by its own worker, and a priority queue (x-max-priority 10) so an
 *            urgent report overtakes the ones already waiting
 *
 * CELERIAC_BROKER_URL     default amqp://guest:guest@localhost:5672/
 * CELERIAC_RESULT_BACKEND default rpc:// (each result is a message back to the client that sent the task);
 *                         set a redis:// URL for results any process can read, and for chords
 * QUEUE_PREFIX            prepended to both queue names (default none), so several copies can share a broker
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp } from '@celeriac/core';

const prefix = process.env.QUEUE_PREFIX ?? '';
export const queues = { orders: `${prefix}orders`, reports: `${prefix}reports` } as const;

export const app = createApp({
  name: 'rabbitmq-example',
  broker: process.env.CELERIAC_BROKER_URL ?? 'amqp://guest:guest@localhost:5672/',
  // Tasks without a route go here (Celery's task_default_queue).
  defaultQueue: queues.orders,
  // How RabbitMQ queues are declared, by name: the reports queue takes priorities 0..10 (higher is served first).
  // Every process declares the same arguments; a queue that already exists with others is a QUEUE_MISMATCH error.
  queues: { [queues.reports]: { maxPriority: 10 } },
  // Exact names or globs; a message's queue can still be chosen per call with `applyAsync(args, { queue })`.
  routes: { 'reports.*': { queue: queues.reports } },
});

/** Which worker process ran a task, so the client can show where the routing sent it. */
const worker = `pid ${process.pid}`;

export const placeOrder = app.task({ name: 'orders.place' }, (orderId: string, items: number) => ({ orderId, items, worker }));

/** The order in which this worker started its reports. */
let started = 0;

/** Render a report (here: take `ms` milliseconds). Returns when it ran, relative to the other reports. */
export const renderReport = app.task({ name: 'reports.render' }, async (name: string, ms: number) => {
  const position = ++started;
  await sleep(ms);
  return { name, position, worker };
});
