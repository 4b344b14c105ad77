/**
 * The app the deployment files run: a few tasks and two periodic entries, so that the worker has work and beat
 * has a schedule. Replace it with your own; the units and the compose file only need `-A dist/tasks.js`.
 *
 * CELERIAC_BROKER_URL  default redis://localhost:6379/0 (compose sets redis://redis:6379/0)
 * PURGE_EVERY          how often the session purge runs (default 15m)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type TaskContext } from '@celeriac/core';

export const app = createApp({
  name: 'deployment-example',
  broker: process.env.CELERIAC_BROKER_URL ?? 'redis://localhost:6379/0',
});

/** Periodic housekeeping. Short, idempotent: safe to run again if a worker dies half-way. */
export const purgeSessions = app.task({ name: 'maintenance.purge_sessions' }, async function (this: TaskContext) {
  await sleep(20, undefined, { signal: this.signal }); // stands for a DELETE ... WHERE expires_at < now()
  this.log.info('purged expired sessions');
  return { purgedAt: new Date().toISOString() };
});

/**
 * A longer task: it checks `this.signal`, which a cold shutdown (a second SIGTERM) or a revoke with terminate
 * aborts. A warm shutdown lets it run to the end, up to the worker's --drain-timeout.
 */
export const sendDigest = app.task({ name: 'emails.send_digest' }, async function (this: TaskContext) {
  for (let batch = 0; batch < 10; batch++) await sleep(100, undefined, { signal: this.signal }); // one batch of emails
  return { day: new Date().toISOString().slice(0, 10), batches: 10 };
});

app.beat.schedule([
  { name: 'purge-sessions', task: purgeSessions, schedule: { every: process.env.PURGE_EVERY ?? '15m' } },
  { name: 'daily-digest', task: sendDigest, schedule: { cron: '0 7 * * *', tz: 'Europe/Oslo' } },
]);
