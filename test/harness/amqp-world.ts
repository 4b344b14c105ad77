/**
 * The RabbitMQ counterpart of redis-world.ts: one fault test's world on a private RabbitMQ node
 * (a fresh vhost each), an oracle Redis (never faulted: idempotent effects), worker processes
 * running test/fixtures/apps/history.ts, a producer history and a fault log, judged by the checker.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, expect, inject } from 'vitest';
import { createApp, newId, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, startWorker, type Spawned } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { freshVhost, type RabbitServer } from '../servers/rabbitmq.js';
import { FaultLog } from './fault-proxy.js';
import { checkHistory, ProducerHistory, readRuns, summary, type HistoryReport } from './history.js';
import { HISTORY_APP, size } from './redis-world.js';

export { FULL, size } from './redis-world.js';

const dir = tempDir('celeriac-amqp-world-');
const worlds: AmqpWorld[] = [];
afterEach(async () => {
  for (const w of [...worlds]) await w.close();
});

export interface AmqpWorldOptions {
  /** URL query the producer and the workers connect with (default `heartbeat=5&publishTimeout=3000`). */
  readonly query?: string;
  /** Rewrite the vhost URL workers use (e.g. through a fault proxy); the producer connects directly. */
  readonly workerUrl?: (url: string) => string;
  /** How long after a fault window closes a duplicate may still start (default 2 × heartbeat + 10 s). */
  readonly slackMs?: number;
  /** Queue declarations (the app's `queues`), for the producer and the workers (amqp-history-app.ts). */
  readonly queues?: Record<string, { type?: 'classic' | 'quorum'; deliveryLimit?: number; deadLetterExchange?: string }>;
}

/** The worker app: history.ts, or its twin that declares the world's queues. */
const AMQP_HISTORY_APP = join(import.meta.dirname, 'amqp-history-app.ts');

/** A fault test's world on `rabbit` (shared by a file's tests; each world has its own vhost). */
export class AmqpWorld {
  readonly producer = new ProducerHistory();
  readonly faults = new FaultLog();
  readonly workers: Spawned[] = [];
  readonly runsFile: string;
  private constructor(
    readonly rabbit: RabbitServer,
    readonly vhost: string,
    readonly url: string,
    readonly oracle: RedisServer,
    readonly client: CeleriacApp,
    readonly env: Record<string, string>,
    readonly slackMs: number,
  ) {
    this.runsFile = env.RUNS_FILE!;
  }

  static async start(rabbit: RabbitServer, options: AmqpWorldOptions = {}): Promise<AmqpWorld> {
    const vhost = `w-${newId().slice(0, 8)}`;
    const base = await freshVhost(rabbit.url, rabbit.node, vhost);
    const url = `${base}?${options.query ?? 'heartbeat=5&publishTimeout=3000'}`;
    const oracle = await startRedis();
    const backend = `${inject('redisUrl')}?keyPrefix=${vhost}:`;
    const env: Record<string, string> = {
      CELERIAC_BROKER_URL: options.workerUrl?.(url) ?? url,
      CELERIAC_RESULT_BACKEND: backend,
      ORACLE_URL: oracle.url,
      RUNS_FILE: join(dir, `runs-${vhost}.jsonl`),
      CELERIAC_LOGLEVEL: 'info',
      ...(options.queues ? { FIXTURE_QUEUES: JSON.stringify(options.queues) } : {}),
    };
    const client = createApp({ broker: url, backend, ...(options.queues ? { queues: options.queues } : {}) });
    const world = new AmqpWorld(rabbit, vhost, url, oracle, client, env, options.slackMs ?? 20_000);
    worlds.push(world);
    return world;
  }

  /** Start a worker process on the history app (concurrency 4 by default). */
  async startWorker(args: string[] = ['-c', '4'], env: Record<string, string> = {}): Promise<Spawned> {
    const w = await startWorker(['-A', this.env.FIXTURE_QUEUES ? AMQP_HISTORY_APP : HISTORY_APP, ...args], { ...this.env, ...env });
    this.workers.push(w);
    return w;
  }

  /** A CLI command against this world's vhost. */
  cli(args: string[]): Spawned {
    return celeriac(args, { ...this.env, CELERIAC_BROKER_URL: this.url });
  }

  /**
   * Send `hist.work` tasks (`inFlight` publishes at a time), recording each outcome: confirmed when
   * the publish resolved, unknown when it failed (it may have landed), retried with the same id
   * until confirmed or `retryForMs` passes. Returns the ids in order.
   */
  async produce(count: number, ms: (i: number) => number, options: { inFlight?: number; retryForMs?: number; prefix?: string } = {}): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, i) => `${options.prefix ?? 'task'}-${i}-${newId().slice(0, 8)}`);
    let next = 0;
    const send = async (i: number): Promise<void> => {
      const id = ids[i]!;
      const deadline = Date.now() + (options.retryForMs ?? 120_000);
      for (;;) {
        try {
          await this.client.sendTask('hist.work', [ms(i)], {}, { taskId: id, ignoreResult: true });
          this.producer.confirmed(id);
          return;
        } catch {
          this.producer.unknown(id);
          if (Date.now() > deadline) return;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    await Promise.all(
      Array.from({ length: options.inFlight ?? 1 }, async () => {
        for (let i = next++; i < count; i = next++) await send(i);
      }),
    );
    return ids;
  }

  /** Finished runs so far. */
  finished(): number {
    return readRuns(this.runsFile).filter((r) => r.end !== undefined).length;
  }

  /** Consumers on `queue` now (0 while the node is down). */
  async consumers(queue = 'celery'): Promise<number> {
    const out = await this.rabbit.ctl('list_queues', '-p', this.vhost, '-q', '--no-table-headers', 'name', 'consumers').catch(() => '');
    const row = out.split('\n').find((l) => l.split('\t')[0] === queue);
    return row ? Number(row.split('\t')[1]) : 0;
  }

  /** `[ready, unacked]` of `queue`. */
  async depth(queue = 'celery'): Promise<[number, number]> {
    const out = await this.rabbit.ctl('list_queues', '-p', this.vhost, '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged');
    const row = out.split('\n').find((l) => l.split('\t')[0] === queue)?.split('\t');
    return row ? [Number(row[1]), Number(row[2])] : [0, 0];
  }

  /** Distinct effects applied (one `effect:<id>` key each on the oracle). */
  async effects(): Promise<number> {
    const oracle = new Redis(this.oracle.url);
    try {
      return await oracle.dbsize();
    } finally {
      oracle.disconnect();
    }
  }

  /** Wait until every confirmed id has a finished run (or the deadline). */
  async drained(timeoutMs = 180_000): Promise<void> {
    const confirmed = [...this.producer.outcomes()].filter(([, o]) => o === 'confirmed').map(([id]) => id);
    await waitFor(
      () => {
        const done = new Set(readRuns(this.runsFile).filter((r) => r.end !== undefined).map((r) => r.id));
        return confirmed.every((id) => done.has(id));
      },
      `all ${confirmed.length} confirmed tasks finished`,
      timeoutMs,
      250,
    );
  }

  /** The most runs that were going at once among those that started at or after `from`. */
  peakConcurrency(from: number): number {
    const edges: [number, number][] = [];
    for (const r of readRuns(this.runsFile)) if (r.end !== undefined && r.start >= from) edges.push([r.start, 1], [r.end, -1]);
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let peak = 0;
    for (const [, d] of edges) peak = Math.max(peak, (now += d));
    return peak;
  }

  check(): HistoryReport {
    // A redelivery after a lost connection can come long after the fault (it waits behind the backlog):
    // it is explained by its first run having been in flight during the fault.
    return checkHistory({ producer: this.producer, runs: readRuns(this.runsFile), faults: this.faults.windows(), slackMs: this.slackMs, inFlightExplains: true });
  }

  /** Stop everything (also done after each test); a second call does nothing. */
  async close(): Promise<void> {
    const at = worlds.indexOf(this);
    if (at === -1) return;
    worlds.splice(at, 1);
    await this.client.close().catch(() => undefined);
    for (const w of this.workers) w.proc.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exited));
    await this.oracle.stop();
    await this.rabbit.ctl('delete_vhost', this.vhost).catch(() => undefined);
  }
}

/**
 * The catalogue's AL1+idem on a RabbitMQ world: once every confirmed task has finished, lost = 0,
 * unexpected = 0, no duplicate outside a fault window, one effect per task.
 */
export async function expectAmqpAL1(world: AmqpWorld): Promise<HistoryReport> {
  await world.drained(size(180_000, 900_000));
  const report = world.check();
  console.log(`[${expect.getState().currentTestName}] ${summary(report)}`);
  if (report.unattributed.length) console.log(`fault windows: ${JSON.stringify(world.faults.windows())}`);
  expect(report.counts.lost).toBe(0);
  expect(report.counts.unexpected).toBe(0);
  expect(report.unattributed).toEqual([]);
  expect(await world.effects()).toBe(report.counts.confirmed + report.counts.recovered);
  return report;
}
