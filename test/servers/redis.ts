import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';

/** A free loopback TCP port (asks the OS, then releases it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly proc: ChildProcess;
  /** kill -9 the server (no save, no goodbye), leaving its AOF as it is. */
  kill9(): Promise<void>;
  /** Start it again on the same port and dir (it reloads its AOF). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A private redis-server (Debian's) on a free loopback port, in a temp dir,
 * with AOF fsync on every write and no eviction — the settings a task queue
 * needs. Stopped (and its dir removed) by `stop()`.
 */
export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  return startRedisOn(await freePort(), extraArgs);
}

/** Like {@link startRedis}, on a given port (e.g. one a client is already trying to reach). */
export async function startRedisOn(port: number, extraArgs: string[] = []): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', ...extraArgs];
  let proc!: ChildProcess;
  let exited!: Promise<void>;
  const launch = async (): Promise<void> => {
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    const p = proc;
    exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    await waitForPort(port, 10_000);
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    get proc() {
      return proc;
    },
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
    restart: launch,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
