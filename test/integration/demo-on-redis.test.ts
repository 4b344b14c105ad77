import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { celeriac, ROOT } from '../helpers/processes.js';
import { freePort } from '../servers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

describe('the README demo, pointed at Redis by one URL', () => {
  it('runs to the end with the same output on redis:// as on the embedded default; a dashboard watching it is named and gets every task', async () => {
    const url = `${inject('redisUrl')}?keyPrefix=demo${process.pid}:`;
    const port = await freePort();
    const dashboard = celeriac(['dashboard', '-b', url, '--port', String(port), '--history', join(tempDir('celeriac-demo-dash-'), 'h.db')], { CELERIAC_RESULT_BACKEND: url });
    await dashboard.waitForOutput(/dashboard listening on/);
    const proc = spawn(process.execPath, [join(ROOT, 'examples', 'demo', 'dist', 'main.js')], {
      cwd: ROOT,
      env: { ...process.env, CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url, CELERIAC_DASHBOARD_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(out).toContain('broker redis://');
    for (const line of ['result: 5', '→ [0,2,4,6,8,10,12,14,16,18]', 'mul(8)) → 64', 'xsum) → 90', 'broken_task raised Exception: failed', 'flaky: succeeded on attempt 3', 'link fired:', 'link_error fired:', 'all 1000 done', 'periodic task fired twice', 'workers and beat stopped cleanly', 'demo finished']) {
      expect(out).toContain(line);
    }
    expect(code).toBe(0);
    expect(out).toContain(`dashboard: http://127.0.0.1:${port}/ is running`);
    expect(out).toContain(`every task of this run is in the dashboard's history: http://127.0.0.1:${port}/tasks`);
    // Its workers started with -E: the chord's body and the failing task are in the history.
    await waitFor(async () => {
      const page = (await (await fetch(`http://127.0.0.1:${port}/api/tasks?name=tasks.xsum&state=SUCCESS`)).json()) as { total: number };
      const failed = (await (await fetch(`http://127.0.0.1:${port}/api/tasks?name=tasks.broken_task&state=FAILURE`)).json()) as { total: number };
      return page.total >= 1 && failed.total >= 1;
    }, 'the demo in the dashboard history');
  });
});
