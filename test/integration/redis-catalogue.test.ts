import { describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, newId } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import { readRuns, summary, unfinishedRuns } from '../harness/history.js';
import { expectAL1, FULL, HISTORY_APP, RedisWorld, size } from '../harness/redis-world.js';

/**
 * The reliability catalogue's Redis and worker faults (T02–T04, T13–T17, T21), each judged by the
 * history checker: lost = 0, unexpected = 0, every duplicate inside a logged fault window, one
 * effect per confirmed task. CI sizes here; `pnpm test:full` runs the catalogue's sizes.
 */

const long = (ms: number): number => ms + size(120_000, 1_200_000);

/**
 * T17's fault: 2 workers (-c 4) finish 200 ms tasks while the result backend is stopped (and, with
 * `alsoKill`, later killed and restarted). Workers hold their slots meanwhile instead of fetching
 * more, and every task ends with one stored SUCCESS: no re-run, no dead letter.
 */
async function stopBackendWhileFinishing(world: RedisWorld, unacked: () => Promise<number>, alsoKill: boolean): Promise<void> {
  await Promise.all([world.startWorker(['-c', '4']), world.startWorker(['-c', '4'])]);
  const ids = await world.produce(size(300, 2000), () => 200);
  const finished = (): number => readRuns(world.runsFile).filter((r) => r.end !== undefined).length;
  await waitFor(() => finished() >= 40, 'some done', 30_000);
  const backend = world.backend!;
  await world.faults.during('backend SIGSTOP', async () => {
    process.kill(backend.proc.pid!, 'SIGSTOP');
    try {
      await sleep(size(12_000, 40_000));
      // Unacked ≤ concurrency × prefetch of both workers.
      expect(await unacked()).toBeLessThanOrEqual(8);
    } finally {
      process.kill(backend.proc.pid!, 'SIGCONT');
    }
  });
  if (alsoKill) {
    await waitFor(() => finished() >= ids.length * 0.6, 'more done', 60_000, 200);
    await world.faults.during('backend kill -9 + restart', async () => {
      await backend.kill9();
      await sleep(5000);
      await backend.restart();
    });
  }
  const report = await expectAL1(world);
  expect(report.counts.duplicated).toBe(0);
  for (const id of ids) expect((await world.client.asyncResult(id).get({ timeout: 60_000 })) as number).toBeGreaterThan(0);
  expect(await (await world.client.transport()).deadLetterCount()).toBe(0);
}

describe('worker faults', () => {
  it(`T02: kill -9 of workers mid-task (${size(5, 25)} kills): nothing lost, orphans back within the lease, nothing stolen from a live owner`, async () => {
    const world = await RedisWorld.start({ visibilityMs: 5000 });
    await Promise.all([world.startWorker(['-c', '4', '-n', 'w1@t02']), world.startWorker(['-c', '4', '-n', 'w2@t02'])]);
    await world.produce(size(2000, 10_000), (i) => 5 + ((i * 7919) % 46));
    const kills = size(5, 25);
    const orphanDelays: number[] = [];
    for (let k = 0; k < kills; k++) {
      await sleep(2000); // the catalogue's kill schedule: one kill every 2 s
      const alive = world.workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
      const victim = alive[k % alive.length]!;
      const window = world.faults.begin('kill -9', `worker ${victim.pid}`);
      const killedAt = Date.now();
      victim.proc.kill('SIGKILL');
      await victim.exited;
      const orphans = unfinishedRuns(readRuns(world.runsFile)).filter((r) => r.pid === victim.pid).map((r) => r.id);
      await sleep(1000);
      await world.startWorker(['-c', '4', '-n', `w${k + 3}@t02`]);
      world.faults.end(window);
      // Each orphan starts again elsewhere: its next run's start, measured from the kill.
      for (const id of orphans) {
        const next = await waitFor(() => readRuns(world.runsFile).find((r) => r.id === id && r.start > killedAt), `orphan ${id} restarted`, 30_000, 50);
        orphanDelays.push(next.start - killedAt);
      }
    }
    const report = await expectAL1(world);
    expect(report.counts.confirmed).toBe(size(2000, 10_000));
    console.log(`T02 orphan restart after kill: max ${Math.max(0, ...orphanDelays)} ms over ${orphanDelays.length} orphans`);
    // Lease 5 s, restore pass every 1.25 s, index scores in whole seconds (up to 1 s late).
    for (const d of orphanDelays) expect(d).toBeLessThanOrEqual(5000 + 1250 + 1000 + 1500);
    for (const w of world.workers) expect(w.output()).not.toMatch(/LEASE_LOST/);
  }, long(120_000));

  it('T03: tasks 4× longer than the lease are never stolen from a live owner', async () => {
    const world = await RedisWorld.start({ visibilityMs: 1000 });
    await Promise.all([world.startWorker(['-c', '10']), world.startWorker(['-c', '10'])]);
    await world.produce(20, () => 4000);
    const report = await expectAL1(world);
    expect(report.counts.duplicated).toBe(0);
    expect(report.counts.ok).toBe(20);
    for (const w of world.workers) expect(w.output()).not.toMatch(/LEASE_LOST/);
  }, 60_000);

  it('T04: an owner paused (SIGSTOP) past its lease: the task moves on, the stale owner writes neither result nor ack, the effect happens once, and it keeps consuming', async () => {
    const world = await RedisWorld.start({ visibilityMs: 3000 });
    const a = await world.startWorker(['-c', '1', '-Q', 'celery,only-a', '-n', 'a@t04']);
    const [x] = await world.produce(1, () => 10_000);
    await waitFor(() => readRuns(world.runsFile).find((r) => r.id === x && r.pid === a.pid), 'A runs X', 20_000);
    const b = await world.startWorker(['-c', '1', '-n', 'b@t04']);
    const pause = world.faults.begin('SIGSTOP', `worker ${a.pid}`);
    process.kill(a.pid, 'SIGSTOP');
    await waitFor(() => readRuns(world.runsFile).find((r) => r.id === x && r.pid === b.pid), 'B is handed X', 30_000, 100);
    await sleep(3 * 3000); // paused for 3× the lease, as the catalogue says
    process.kill(a.pid, 'SIGCONT');
    world.faults.end(pause);
    await a.waitForOutput(/LEASE_LOST/, 30_000);
    const result = world.client.asyncResult<number>(x!);
    expect(await result.get({ timeout: 30_000 })).toBe(b.pid);
    await expectAL1(world);
    // A's run ended too (it was paused, not killed), yet only B's outcome stands.
    expect(readRuns(world.runsFile).filter((r) => r.id === x && r.end !== undefined).map((r) => r.pid).sort()).toEqual([a.pid, b.pid].sort());
    expect(await world.effects()).toBe(1);
    // Progress: A consumes again.
    const after = await world.client.sendTask<number>('hist.pid', [], {}, { queue: 'only-a' });
    expect(await after.get({ timeout: 20_000 })).toBe(a.pid);
  }, 120_000);
});

describe('Redis faults', () => {
  for (const fsync of ['always', 'everysec'] as const) {
    it(`T14${fsync === 'always' ? 'a' : 'b'}: redis-server killed (kill -9) under enqueue load with appendfsync ${fsync}: ${fsync === 'always' ? 'no acknowledged enqueue lost' : 'losses bounded by the last second of writes, and every one reported'}`, async () => {
      const world = await RedisWorld.start({ brokerArgs: ['--appendfsync', fsync] });
      const n = size(3000, 10_000);
      const confirmedAt = new Map<string, number>();
      let killedAt = 0;
      let crash: Promise<void> | undefined;
      await world.produce(n, () => 0, {
        results: false,
        onSent: (i, id) => {
          confirmedAt.set(id, Date.now());
          if (i === Math.floor(n / 3)) {
            const window = world.faults.begin('redis kill -9');
            killedAt = Date.now();
            crash = world.broker.kill9().then(async () => {
              await world.broker.restart();
              world.faults.end(window);
            });
          }
        },
      });
      await crash;
      await world.startWorker(['-c', '20']);
      if (fsync === 'always') {
        await expectAL1(world);
        return;
      }
      // everysec: what the AOF had not synced is lost; the checker names every such id.
      const admin = new Redis(world.broker.url);
      try {
        await waitFor(async () => (await admin.llen('celery')) === 0 && (await admin.hlen('unacked')) === 0, 'all that survived drained', 120_000, 200);
      } finally {
        admin.disconnect();
      }
      const report = world.check();
      console.log(`T14b ${summary(report)}`);
      expect(report.counts.unexpected).toBe(0);
      for (const id of report.lost) expect(killedAt - confirmedAt.get(id)!).toBeLessThanOrEqual(2000);
    }, long(120_000));
  }

  it('T14c: a worker refuses a broker Redis that may drop tasks (eviction on, no persistence) with UNSAFE_REDIS_CONFIG, unless allowed', async () => {
    for (const args of [['--maxmemory-policy', 'allkeys-lru'], ['--appendonly', 'no']]) {
      const world = await RedisWorld.start({ brokerArgs: args });
      const refused = world.cli(['worker', '-A', HISTORY_APP]);
      expect(await refused.exited).toBe(2);
      expect(refused.output()).toMatch(/UNSAFE_REDIS_CONFIG: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 has (maxmemory-policy allkeys-lru|no persistence)/);
      const allowed = await world.startWorker(['-c', '1'], { FIXTURE_ALLOW_UNSAFE: '1' });
      expect(allowed.output()).toMatch(/allowed by allowUnsafeBroker/);
    }
  }, 60_000);

  it(`T13: a half-open partition (blackhole ${size(15, 45)} s) between workers and Redis is detected, the sockets replaced, nothing lost`, async () => {
    const world = await RedisWorld.start({ visibilityMs: 5000 });
    const proxy = await startFaultProxy({ port: world.broker.port });
    const viaProxy = { CELERIAC_BROKER_URL: proxy.url('redis', '/0') };
    try {
      await Promise.all([world.startWorker(['-c', '4'], viaProxy), world.startWorker(['-c', '4'], viaProxy)]);
      await world.produce(size(200, 3000), () => size(200, 1000));
      await waitFor(() => readRuns(world.runsFile).length >= 20, 'work under way', 20_000);
      const cut = world.faults.begin('blackhole');
      const acceptedBefore = proxy.accepted();
      const cutAt = Date.now();
      proxy.set({ kind: 'blackhole' });
      // Detected within the command timeout (2 s): each worker's silent sockets are destroyed and dialled again.
      await waitFor(() => proxy.accepted() >= acceptedBefore + 2, 'workers replace their sockets', 10_000, 50);
      const detectedInMs = Date.now() - cutAt;
      console.log(`T13 partition detected (a socket replaced) after ${detectedInMs} ms`);
      expect(detectedInMs).toBeLessThanOrEqual(2000 + 1500);
      await sleep(size(15_000, 45_000) - detectedInMs);
      proxy.set({ kind: 'pass' });
      world.faults.end(cut);
      if (FULL) {
        await world.faults.during('reset', async () => proxy.set({ kind: 'reset' }));
        // A slow link (RTT 1 s, under the 2 s command timeout): no false disconnects, no duplicates.
        proxy.set({ kind: 'delay', ms: 500 });
        await sleep(30_000);
        proxy.set({ kind: 'pass' });
      }
      await expectAL1(world);
      const progress = await world.client.sendTask<number>('hist.pid');
      expect(await progress.get({ timeout: 20_000 })).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  }, long(120_000));

  it(`T15: Redis killed with tasks in flight and back 10 s later, ${size(2, 5)} times: workers resume each time, nothing lost`, async () => {
    const world = await RedisWorld.start({ visibilityMs: 30_000 });
    await Promise.all([world.startWorker(['-c', '4']), world.startWorker(['-c', '4'])]);
    const rounds = size(2, 5);
    for (let round = 0; round < rounds; round++) {
      const sent = new Set(await world.produce(16, () => 1500));
      await waitFor(() => readRuns(world.runsFile).filter((r) => sent.has(r.id)).length >= 8, `round ${round}: 8 in flight`, 20_000);
      const down = world.faults.begin('redis kill -9 + 10 s down', `round ${round}`);
      await world.broker.kill9();
      await sleep(10_000);
      await world.broker.restart();
      const backAt = Date.now();
      // Workers fetch again within 10 s of Redis being back.
      const probe = await waitFor(() => world.client.sendTask<number>('hist.pid').catch(() => undefined), 'probe accepted', 20_000, 100);
      await probe.get({ timeout: 20_000 });
      expect(Date.now() - backAt).toBeLessThanOrEqual(10_000);
      world.faults.end(down);
    }
    await expectAL1(world);
    for (const w of world.workers) expect(w.proc.exitCode).toBeNull();
  }, long(240_000));

  it('T16: Redis stalled 20 s (CLIENT PAUSE): sends fail fast with BROKER_UNAVAILABLE, no waiter hangs, work in flight is kept', async () => {
    const world = await RedisWorld.start({ visibilityMs: 30_000 });
    await world.startWorker(['-c', '4']);
    await world.produce(40, () => 300);
    await waitFor(() => readRuns(world.runsFile).length >= 4, 'work under way', 20_000);
    const admin = new Redis(world.broker.url);
    try {
      const stall = world.faults.begin('CLIENT PAUSE 20 s');
      await admin.client('PAUSE', 20_000, 'ALL');
      const started = Date.now();
      // Failed fast — yet a paused Redis runs the queued write once the pause ends: its outcome is unknown.
      const id = newId();
      const err = await world.client.sendTask('hist.work', [0], {}, { taskId: id }).catch((e: unknown) => e);
      world.producer.unknown(id);
      expect((err as { code?: string }).code).toBe(ErrorCodes.BROKER_UNAVAILABLE);
      expect(Date.now() - started).toBeLessThanOrEqual(2500);
      await waitFor(() => Date.now() - started > 20_000, 'the pause to pass', 30_000, 250);
      world.faults.end(stall);
      await world.produce(10, () => 50);
    } finally {
      admin.disconnect();
    }
    await expectAL1(world);
  }, 120_000);

  it(`T17: the result backend stopped (SIGSTOP ${size(12, 40)} s) then killed and restarted while tasks finish: every result stored once, SUCCESS, no re-run, nothing dead-lettered`, async () => {
    const world = await RedisWorld.start({ visibilityMs: 30_000, separateBackend: true });
    const admin = new Redis(world.broker.url);
    try {
      await stopBackendWhileFinishing(world, () => admin.hlen('unacked'), true);
      expect(await admin.hlen('celeriac.deliveries')).toBe(0);
    } finally {
      admin.disconnect();
    }
  }, long(240_000));

  it(`T17 over RabbitMQ (the catalogue's setup): the Redis result backend stopped ${size(12, 40)} s while tasks finish: results stored once, no redelivery loop, nothing dead-lettered`, async () => {
    const vhost = `t17-${process.pid}-${Date.now()}`;
    const node = inject('amqpNode');
    execFileSync('rabbitmqctl', ['-n', node, 'add_vhost', vhost], { stdio: 'ignore' });
    execFileSync('rabbitmqctl', ['-n', node, 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'], { stdio: 'ignore' });
    const unacked = async (): Promise<number> =>
      execFileSync('rabbitmqctl', ['-n', node, 'list_queues', '-p', vhost, '-q', '--no-table-headers', 'name', 'messages_unacknowledged'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => /^celery\s/.test(l))
        .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[1] ?? 0), 0);
    const world = await RedisWorld.start({ visibilityMs: 30_000, separateBackend: true, brokerUrl: () => `${inject('amqpUrl')}/${vhost}` });
    try {
      await stopBackendWhileFinishing(world, unacked, false);
    } finally {
      // Clients and workers first: a vhost deleted under a connection makes it reconnect for ever.
      await world.close();
      execFileSync('rabbitmqctl', ['-n', node, 'delete_vhost', vhost], { stdio: 'ignore' });
    }
  }, long(240_000));

  it(`T21: a ${size(20_000, 100_000)}-task backlog drained with no faults: every task once, worker memory bounded`, async () => {
    const world = await RedisWorld.start({ visibilityMs: 30_000 });
    const n = size(20_000, 100_000);
    // The backlog in bulk (a pipeline per 1000), then one worker drains it.
    await world.produce(n, () => 0, { results: false });
    const worker = await world.startWorker(['-c', '50']);
    const rss: number[] = [];
    const sampler = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${worker.pid}/status`, 'utf8');
        rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
      } catch {
        // The worker is gone: the assertions below say so.
      }
    }, 250);
    try {
      await world.drained(size(180_000, 900_000));
    } finally {
      clearInterval(sampler);
    }
    const report = await expectAL1(world);
    expect(report.counts.ok).toBe(n);
    const quarter = rss[Math.floor(rss.length / 4)] ?? 0;
    const peak = Math.max(...rss);
    console.log(`T21 worker RSS MB: first ${rss[0]?.toFixed(0)}, at 25 % ${quarter.toFixed(0)}, peak ${peak.toFixed(0)}, last ${rss.at(-1)?.toFixed(0)} (${rss.length} samples)`);
    // Bounded: no growth with the number of tasks past the first quarter of the drain.
    expect(peak - quarter).toBeLessThan(60);
  }, long(300_000));
});
