/**
 * The demo's tasks — the same names as Celery's first-steps lecture, so a
 * Python client could call them too. Workers load this module with
 * `celeriac worker -A examples/demo/dist/tasks.js`.
 */
import { createApp, type TaskContext } from '@celeriac/core';

// No broker option: CELERIAC_BROKER_URL when set, else the embedded default (SQLite file).
export const app = createApp({ name: 'demo', visibilityTimeout: 10_000 });

export const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
export const mul = app.task({ name: 'tasks.mul' }, (x: number, y: number) => x * y);
export const xsum = app.task({ name: 'tasks.xsum' }, (numbers: number[]) => numbers.reduce((a, b) => a + b, 0));
export const noop = app.task({ name: 'tasks.noop' }, () => null);

export const brokenTask = app.task({ name: 'tasks.broken_task' }, () => {
  throw new Error('failed');
});

/** Fails twice, then succeeds: retried automatically with a short backoff. */
export const flaky = app.task(
  { name: 'tasks.flaky', autoretryFor: [Error], maxRetries: 5, retryBackoff: 200, retryJitter: false },
  function (this: TaskContext) {
    if (this.retries < 2) throw new Error(`not yet (attempt ${this.retries + 1})`);
    return `succeeded on attempt ${this.retries + 1}`;
  },
);

export const printTask = app.task({ name: 'tasks.print_task' }, (text: string) => {
  console.log(`  [worker ${process.pid}] print_task: ${text}`);
  return null;
});

export const onTaskSuccess = app.task({ name: 'tasks.on_task_success' }, (result: unknown, taskName: string) => `${taskName} succeeded with ${JSON.stringify(result)}`);

/** Sent by beat every second (see the schedule below). */
export const heartbeat = app.task({ name: 'tasks.heartbeat' }, () => new Date().toISOString());

app.beat.schedule({ name: 'heartbeat', task: heartbeat, schedule: { every: '1s' } });

export const onTaskError = app.task({ name: 'tasks.on_task_error' }, (taskId: string, taskName: string) => `${taskName} (${taskId}) failed`);
