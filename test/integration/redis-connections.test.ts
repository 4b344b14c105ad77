import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createApp, ErrorCodes, type CeleriacApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { freePort, startRedis, startRedisOn, type RedisServer } from '../servers/redis.js';
import { waitFor } from '../helpers/wait.js';

const servers: RedisServer[] = [];
const apps: CeleriacApp[] = [];
const workers: Worker[] = [];
const procs: ReturnType<typeof spawn>[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ timeoutMs: 1000 });
  for (const a of apps.splice(0)) await a.close().catch(() => undefined);
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  for (const s of servers.splice(0)) await s.stop();
});

/** delay → in-process worker → get through the given URL: broker and backend both work over that connection. */
async function roundTrip(url: string): Promise<number> {
  const app = createApp({ broker: url });
  apps.push(app);
  app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
  const worker = new Worker(app, { logLevel: 'silent' });
  workers.push(worker);
  await worker.start();
  return (await app.sendTask<number>('tasks.add', [20, 22])).get({ timeout: 10_000 });
}

describe('Redis connections', () => {
  it('rediss:// verifies the server certificate: trusted CA works, an unknown one is a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=celeriac-test-ca');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext');
    const port = await freePort();
    servers.push(
      await startRedisOn(port, ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'server.crt'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no']),
    );
    expect(await roundTrip(`rediss://127.0.0.1:${port}/0?ca=${encodeURIComponent(join(dir, 'ca.crt'))}`)).toBe(42);
    const untrusted = createApp({ broker: `rediss://:pw@127.0.0.1:${port}/0` });
    apps.push(untrusted);
    const err = (await untrusted.transport().catch((e: unknown) => e)) as { code: string; message: string };
    expect(err.code).toBe(ErrorCodes.BROKER_UNAVAILABLE);
    expect(err.message).toMatch(/self[- ]signed|unable to verify|certificate/i);
    expect(err.message).not.toContain(':pw@');
  });

  it('an ACL user with a password connects; a wrong password is a clear error without the password', async () => {
    const redis = await startRedis();
    servers.push(redis);
    const admin = new Redis(redis.url);
    await admin.acl('SETUSER', 'celeriac', 'on', '>s3cret', '~*', '&*', '+@all');
    admin.disconnect();
    expect(await roundTrip(`redis://celeriac:s3cret@127.0.0.1:${redis.port}/3`)).toBe(42);
    const wrong = createApp({ broker: `redis://celeriac:nope-secret@127.0.0.1:${redis.port}/3` });
    apps.push(wrong);
    const err = (await wrong.transport().catch((e: unknown) => e)) as { code: string; message: string };
    expect(err.code).toBe(ErrorCodes.BROKER_UNAVAILABLE);
    expect(err.message).toMatch(/WRONGPASS|invalid username-password/i);
    expect(err.message).not.toContain('nope-secret');
  });

  it('redis+sentinel:// finds the master through Sentinel', async () => {
    const master = await startRedis();
    servers.push(master);
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-sentinel-'));
    const port = await freePort();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`, ''].join('\n'));
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    procs.push(sentinel);
    const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    probe.on('error', () => undefined);
    await waitFor(async () => {
      try {
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        const addr = (await probe.call('SENTINEL', 'get-master-addr-by-name', 'mymaster')) as string[] | null;
        return addr?.[1] === String(master.port);
      } catch {
        return false;
      }
    }, 'sentinel knows the master', 20_000, 100);
    probe.disconnect();
    expect(await roundTrip(`redis+sentinel://127.0.0.1:${port}/mymaster/2`)).toBe(42);
  });
});
