import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, expect } from 'vitest';
import { createApp, newId, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, ROOT, startWorker, type Spawned } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { FaultLog } from './fault-proxy.js';
import { checkHistory, ProducerHistory, readRuns, summary, type HistoryReport } from './history.js';

export const HISTORY_APP = join(ROOT, 'test', 'fixtures', 'apps', 'history.ts');

/** Catalogue sizes with `pnpm test:full` (CELERIAC_FULL=1), CI sizes otherwise. */
export const FULL = process.env.CELERIAC_FULL === '1';
export const size = (ci: number, full: number): number => (FULL ? full : ci);

const dir = tempDir('celeriac-fault-world-');
const worlds: RedisWorld[] = [];
afterEach(async () => {
  for (const w of [...worlds]) await w.close();
});

export interface WorldOptions {
  /** The broker's lease (visibility timeout), ms. */
  readonly visibilityMs?: number;
  /** A result backend on a Redis of its own (faulted apart from the broker). */
  readonly separateBackend?: boolean;
  /** Extra redis-server arguments for the broker (e.g. `--appendfsync everysec`). */
  readonly brokerArgs?: string[];
  /** Broker URL clients and workers use instead of the server's own (e.g. through a fault proxy). */
  readonly brokerUrl?: (server: RedisServer) => string;
}

/**
 * One fault test's world: a broker Redis (faulted), an oracle Redis (never faulted: idempotent
 * effects), optionally a backend Redis, worker processes running test/fixtures/apps/history.ts,
 * a producer history, and a fault log. {@link RedisWorld.check} judges the history.
 */
export class RedisWorld {
  readonly producer = new ProducerHistory();
  readonly faults = new FaultLog();
  readonly workers: Spawned[] = [];
  readonly runsFile: string;
  private constructor(
    readonly broker: RedisServer,
    readonly oracle: RedisServer,
    readonly backend: RedisServer | undefined,
    readonly client: CeleriacApp,
    readonly env: Record<string, string>,
    readonly visibilityMs: number,
  ) {
    this.runsFile = env.RUNS_FILE!;
  }

  static async start(options: WorldOptions = {}): Promise<RedisWorld> {
    const [broker, oracle, backend] = await Promise.all([
      startRedis(options.brokerArgs ?? []),
      startRedis(),
      options.separateBackend ? startRedis() : Promise.resolve(undefined),
    ]);
    const brokerUrl = options.brokerUrl?.(broker) ?? broker.url;
    const visibilityMs = options.visibilityMs ?? 5000;
    const env: Record<string, string> = {
      CELERIAC_BROKER_URL: brokerUrl,
      ...(backend ? { CELERIAC_RESULT_BACKEND: backend.url } : {}),
      ORACLE_URL: oracle.url,
      RUNS_FILE: join(dir, `runs-${newId()}.jsonl`),
      FIXTURE_VISIBILITY_MS: String(visibilityMs),
    };
    const client = createApp({ broker: brokerUrl, ...(backend ? { backend: backend.url } : {}), visibilityTimeout: visibilityMs });
    const world = new RedisWorld(broker, oracle, backend, client, env, visibilityMs);
    worlds.push(world);
    return world;
  }

  /** Start a worker process on the history app. */
  async startWorker(args: string[] = ['-c', '4'], env: Record<string, string> = {}): Promise<Spawned> {
    const w = await startWorker(['-A', HISTORY_APP, ...args], { ...this.env, ...env });
    this.workers.push(w);
    return w;
  }

  /** A CLI command against this world's broker. */
  cli(args: string[]): Spawned {
    return celeriac(args, this.env);
  }

  /**
   * Send `hist.work` tasks, recording each outcome: confirmed when the publish resolved, unknown
   * when it failed (a timeout may have landed), retried with the same id until confirmed or the
   * deadline. Returns the ids.
   */
  async produce(
    count: number,
    ms: (i: number) => number,
    options: { retryForMs?: number; results?: boolean; onSent?: (i: number, id: string) => Promise<void> | void } = {},
  ): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = newId();
      ids.push(id);
      const deadline = Date.now() + (options.retryForMs ?? 60_000);
      for (;;) {
        try {
          await this.client.sendTask('hist.work', [ms(i)], {}, { taskId: id, ignoreResult: options.results === false });
          this.producer.confirmed(id);
          break;
        } catch {
          this.producer.unknown(id);
          if (Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await options.onSent?.(i, id);
    }
    return ids;
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
  async drained(timeoutMs = 120_000): Promise<void> {
    const confirmed = [...this.producer.outcomes()].filter(([, o]) => o === 'confirmed').map(([id]) => id);
    await waitFor(
      () => {
        const done = new Set(readRuns(this.runsFile).filter((r) => r.end !== undefined).map((r) => r.id));
        return confirmed.every((id) => done.has(id));
      },
      `all ${confirmed.length} confirmed tasks finished`,
      timeoutMs,
      200,
    );
  }

  /** The checker's report; a duplicate is attributed to a fault within lease + 2 heartbeats of it. */
  check(): HistoryReport {
    return checkHistory({ producer: this.producer, runs: readRuns(this.runsFile), faults: this.faults.windows(), slackMs: this.visibilityMs + 4000 });
  }

  /** Stop everything (also done after each test); a second call does nothing. */
  async close(): Promise<void> {
    const at = worlds.indexOf(this);
    if (at === -1) return;
    worlds.splice(at, 1);
    await this.client.close().catch(() => undefined);
    for (const w of this.workers) w.proc.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exited));
    for (const server of [this.broker, this.oracle, this.backend]) await server?.stop();
  }
}

/**
 * The counts every fault test asserts (the catalogue's AL1+idem): once every confirmed task has
 * finished, lost = 0, unexpected = 0, no duplicate outside a fault window, one effect per task.
 */
export async function expectAL1(world: RedisWorld): Promise<HistoryReport> {
  await world.drained(size(180_000, 900_000));
  const report = world.check();
  console.log(`[${expect.getState().currentTestName}] ${summary(report)}`);
  expect(report.counts.lost).toBe(0);
  expect(report.counts.unexpected).toBe(0);
  expect(report.unattributed).toEqual([]);
  expect(await world.effects()).toBe(report.counts.confirmed + report.counts.recovered);
  return report;
}
