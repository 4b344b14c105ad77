/**
 * The tasks behind the HTTP API. The worker runs them (`celeriac worker -A dist/tasks.js`); the server
 * (`node dist/server.js`) imports the same module to send them.
 *
 * CELERIAC_BROKER_URL  default sqlite://./data/celeriac.db: the embedded broker, a SQLite file shared by the
 *                      server and the worker on one machine (no server to run). Results are stored there too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type TaskContext } from '@celeriac/core';

export const app = createApp({
  name: 'http-example',
  broker: process.env.CELERIAC_BROKER_URL ?? 'sqlite://./data/celeriac.db',
});

/** Quick: the API waits for it and answers with the result. */
export const add = app.task({ name: 'math.add' }, (a: number, b: number) => a + b);

export interface Report {
  rows: number;
  total: number;
}

/**
 * Slow: the API answers 202 at once with the job's id, and the caller polls `GET /jobs/:id`. `trackStarted`
 * stores STARTED when the task begins; `updateState('PROGRESS', ...)` stores how far it got, which the API shows.
 */
export const buildReport = app.task({ name: 'reports.build', trackStarted: true }, async function (this: TaskContext, rows: number): Promise<Report> {
  let total = 0;
  for (let row = 1; row <= rows; row++) {
    total += row * row; // stands for reading and aggregating one row
    if (row % 25 === 0) {
      await this.updateState('PROGRESS', { done: row, of: rows });
      await sleep(10, undefined, { signal: this.signal }); // stands for the I/O between batches
    }
  }
  return { rows, total };
});
