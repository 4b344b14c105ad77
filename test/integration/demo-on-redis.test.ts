import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

describe('the README demo, pointed at Redis by one URL', () => {
  it('runs to the end with the same output on redis:// as on the embedded default', async () => {
    const url = `${inject('redisUrl')}?keyPrefix=demo${process.pid}:`;
    const proc = spawn(process.execPath, [join(ROOT, 'examples', 'demo', 'dist', 'main.js')], {
      cwd: ROOT,
      env: { ...process.env, CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url },
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
  });
});
