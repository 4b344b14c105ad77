import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, type CeleriacApp } from '@celeriac/core';
import { ROOT, startWorker } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { startPythonWorker } from '../helpers/python.js';
import { delayGetInteropCases } from '../helpers/interop-cases.js';

const LECTURE = join(ROOT, 'test', 'fixtures', 'apps', 'lecture.ts');
let n = 0;
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

/** Each test gets its own Redis database (1..15), so queues never mix. */
function world() {
  const db = (++n % 15) + 1;
  const url = inject('redisUrl').replace(/\/0$/, `/${db}`);
  const env = { CELERIAC_BROKER_URL: url, CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: url };
  return { url, backend: url, env };
}

describe('interop with Python Celery 5.2.6 over Redis', () => {
  delayGetInteropCases(async () => world(), LECTURE, clients);

  it("a Python worker restores a killed celeriac worker's unacknowledged messages and runs them", async () => {
    const { url, env } = world();
    const raw = new Redis(url);
    try {
      const w = await startWorker(['-A', LECTURE, '-c', '2'], env);
      const app = createApp({ broker: url });
      clients.push(app);
      const rs = [await app.sendTask<string>('tasks.sleepy', [3000, 'a']), await app.sendTask<string>('tasks.sleepy', [3000, 'b'])];
      await waitFor(async () => (await raw.hlen('unacked')) === 2, 'both held by the celeriac worker');
      w.proc.kill('SIGKILL');
      await w.exited;
      // Python restores, when it starts, the entries older than its visibility window (0.5 s here): wait until they are.
      await waitFor(async () => {
        const [, newest] = await raw.zrevrange('unacked_index', 0, 0, 'WITHSCORES');
        return Date.now() / 1000 - Number(newest) > 1;
      }, 'unacked entries older than the Python visibility window');
      const py = await startPythonWorker({ ...env, CELERY_VISIBILITY_TIMEOUT: '0.5' });
      const values = await Promise.all(rs.map((r) => r.get({ timeout: 40_000 }))).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${py.output()}`);
      });
      expect(values).toEqual(['a', 'b']);
      // The ack follows the stored result: wait for it rather than race it.
      await waitFor(async () => (await raw.hlen('unacked')) === 0, 'unacked emptied by the ack');
    } finally {
      raw.disconnect();
    }
  });

  it("a celeriac worker restores a killed Python worker's unacknowledged messages and runs them", async () => {
    const { url, env } = world();
    const raw = new Redis(url);
    try {
      const py = await startPythonWorker({ ...env, CELERY_ACKS_LATE: '1' });
      const app = createApp({ broker: url });
      clients.push(app);
      const r = await app.sendTask<string>('tasks.sleepy', [3000, 'from-python']);
      await waitFor(async () => (await raw.hlen('unacked')) === 1, 'held by the Python worker');
      py.kill();
      await startWorker(['-A', LECTURE, '-c', '2'], { ...env, FIXTURE_VISIBILITY_MS: '1000' });
      const sleepyFast = await r.get({ timeout: 60_000 }).catch((e: unknown) => e);
      expect(sleepyFast).toBe('from-python');
      // The ack follows the stored result: wait for it rather than race it.
      await waitFor(async () => (await raw.hlen('unacked')) === 0, 'unacked emptied by the ack');
    } finally {
      raw.disconnect();
    }
  });
});
