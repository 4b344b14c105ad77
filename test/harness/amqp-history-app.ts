/**
 * The history app (test/fixtures/apps/history.ts) with the AMQP queue declarations a test asks for
 * (FIXTURE_QUEUES, JSON: e.g. a quorum queue with a delivery limit), for test/harness/amqp-world.ts.
 * Same task, same records: each run in RUNS_FILE (start, then start+end), its one effect through
 * `SET effect:<id> NX` on the oracle Redis (ORACLE_URL).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createApp, type TaskContext } from '@celeriac/core';
import { recordRun, recordStart } from './run-record.js';

export const app = createApp({
  name: 'amqp-history',
  maxDeliveries: Number(process.env.FIXTURE_MAX_DELIVERIES ?? 50),
  queues: JSON.parse(process.env.FIXTURE_QUEUES ?? '{}') as Record<string, { type?: 'classic' | 'quorum'; deliveryLimit?: number; deadLetterExchange?: string }>,
});

let oracle: Redis | undefined;
function effects(): Redis {
  oracle ??= new Redis(process.env.ORACLE_URL!, { maxRetriesPerRequest: 3 });
  return oracle;
}

/** Sleeps `ms` (honouring its signal), applies its effect once, and records the run. */
export const work = app.task({ name: 'hist.work' }, async function (this: TaskContext, ms: number) {
  const file = process.env.RUNS_FILE!;
  const run = { id: this.id, attempt: this.retries + 1, deliveryCount: null, pid: process.pid, start: Date.now() };
  recordStart(file, run);
  if (ms > 0) await sleep(ms, undefined, { signal: this.signal });
  await effects().set(`effect:${this.id}`, String(process.pid), 'NX');
  recordRun(file, { ...run, end: Date.now() });
  return process.pid;
});
