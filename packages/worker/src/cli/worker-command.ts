import { Command, Option } from '@commander-js/extra-typings';
import { redactUrl } from '@celeriac/core/spi';
import { createLogger } from '../logger.js';
import { Worker } from '../worker.js';
import { ProcessPool } from '../pools/process.js';
import { AsyncPool } from '../pools/async.js';
import { loadApp } from './load-app.js';
import { capYoungGeneration, DEFAULT_YOUNG_GENERATION_MB } from '../young-generation.js';
import { nonNegativeInt, positiveInt, queueList } from './options.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function workerCommand(): Command {
  return new Command('worker')
    .description('Start a worker: consume queues and run tasks (like `celery worker`).')
    .addOption(new Option('-A, --app <module>', 'module exporting the app: .ts/.mts/.cts (via tsx) or .js/.mjs/.cjs, ESM or CommonJS; `file:exportName` picks an export').env('CELERIAC_APP').makeOptionMandatory())
    .addOption(new Option('-Q, --queues <list>', 'comma-separated queues to consume (default: the app default queue)').env('CELERIAC_QUEUES').argParser(queueList))
    .addOption(new Option('-c, --concurrency <n>', 'tasks run at once (default: 10 async, CPU count for process)').env('CELERIAC_CONCURRENCY').argParser(positiveInt))
    .addOption(new Option('-P, --pool <kind>', 'execution pool').choices(['async', 'process'] as const).default('async' as const).env('CELERIAC_POOL'))
    .addOption(new Option('--prefetch <n>', 'unacknowledged messages held (default: equal to concurrency)').env('CELERIAC_PREFETCH').argParser(positiveInt))
    .addOption(new Option('-n, --hostname <name>', 'node name; %h, %n, %d expand to the host, its name, its domain (default celeriac@%h)').env('CELERIAC_HOSTNAME'))
    .addOption(new Option('-l, --loglevel <level>', 'log level').choices(LEVELS).default('info' as const).env('CELERIAC_LOGLEVEL'))
    .addOption(new Option('--max-tasks-per-child <n>', 'process pool: replace a child after this many tasks').env('CELERIAC_MAX_TASKS_PER_CHILD').argParser(positiveInt))
    .addOption(new Option('--max-memory-per-child <mb>', 'process pool: replace a child whose RSS passes this many MB').env('CELERIAC_MAX_MEMORY_PER_CHILD').argParser(positiveInt))
    .addOption(new Option('--drain-timeout <ms>', 'warm shutdown: wait this long for running tasks').env('CELERIAC_DRAIN_TIMEOUT').argParser(nonNegativeInt).default(30_000))
    .addOption(new Option('-B, --beat', 'also run the beat scheduler in this process').env('CELERIAC_BEAT'))
    .addOption(new Option('-E, --events', 'send task and worker events on celeryev (Celery\'s -E; enable_events turns them on later)').env('CELERIAC_EVENTS'))
    .addOption(
      new Option('--young-generation-mb <mb>', 'cap V8\'s young generation at about this many MB (0: leave V8\'s default, up to 32)')
        .env('CELERIAC_YOUNG_GENERATION_MB')
        .argParser(nonNegativeInt)
        .default(DEFAULT_YOUNG_GENERATION_MB),
    )
    .addOption(new Option('--metrics-port <port>', 'serve Prometheus metrics on this port (0: any free port; the address is logged)').env('CELERIAC_METRICS_PORT').argParser(nonNegativeInt))
    .action(async (opts) => {
      // First: the young generation grows as soon as the app loads and tasks flow.
      if (opts.youngGenerationMb > 0) capYoungGeneration(opts.youngGenerationMb);
      const log = createLogger(opts.loglevel);
      const { app, path } = await loadApp(opts.app);
      const concurrency = opts.concurrency ?? (opts.pool === 'process' ? (await import('node:os')).availableParallelism() : 10);
      const pool =
        opts.pool === 'process'
          ? new ProcessPool({
              module: path,
              size: concurrency,
              logLevel: opts.loglevel,
              youngGenerationMb: opts.youngGenerationMb,
              ...(opts.maxTasksPerChild ? { maxTasksPerChild: opts.maxTasksPerChild } : {}),
              ...(opts.maxMemoryPerChild ? { maxMemoryPerChildMb: opts.maxMemoryPerChild } : {}),
            })
          : new AsyncPool();
      let signals = 0;
      let embedded: (() => Promise<void>) | undefined;
      let metrics: { url: string; close: () => Promise<void> } | undefined;
      const worker = new Worker(app, {
        logger: log,
        pool,
        concurrency,
        ...(opts.queues ? { queues: opts.queues } : {}),
        ...(opts.prefetch ? { prefetch: opts.prefetch } : {}),
        ...(opts.hostname ? { hostname: opts.hostname } : {}),
        sendEvents: opts.events === true,
        // Remote `shutdown`: the same warm shutdown as a first SIGTERM.
        onShutdownRequest: () => onSignal('SIGTERM'),
      });
      await startWithRetry(worker, log, app.config.broker.redacted);
      if (opts.metricsPort !== undefined) {
        // Loaded only when asked for: a worker without metrics does not carry prom-client.
        const { serveMetrics } = await import('../metrics.js');
        metrics = await serveMetrics(worker, opts.metricsPort);
        log.info({ url: metrics.url }, 'metrics served');
      }
      // -B: the same scheduler as `celeriac beat`, with the same lease and per-slot claims.
      if (opts.beat) embedded = await startEmbeddedBeat(app, log);
      // Once: after a cold shutdown the warm one also finishes, and must not exit while the first close still flushes acks.
      let exiting: Promise<never> | undefined;
      const exit = (): Promise<never> =>
        (exiting ??= (async () => {
          await embedded?.();
          await metrics?.close();
          await app.close();
          // Exit 0 after a clean warm shutdown; 1 when it was cut short by a second signal.
          process.exit(signals > 1 ? 1 : 0);
        })());
      function onSignal(signal: NodeJS.Signals): void {
        signals++;
        if (signals === 1) {
          log.info({ signal }, 'warm shutdown: finishing running tasks (send again for cold shutdown)');
          void worker.stop({ timeoutMs: opts.drainTimeout }).then(exit);
        } else if (signals === 2) {
          log.warn({ signal }, 'cold shutdown: unfinished tasks return to the queue');
          void worker.cold().then(exit);
        }
      }
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
}

/** An unreachable broker is one clear line and a retry with backoff, not a stack trace. */
async function startWithRetry(worker: Worker, log: ReturnType<typeof createLogger>, broker: string): Promise<void> {
  for (let attempt = 1, delay = 500; ; attempt++, delay = Math.min(delay * 2, 30_000)) {
    try {
      await worker.start();
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'CAPABILITY_MISSING' || code === 'CONFIG_INVALID' || code === 'URL_INVALID' || code === 'UNSAFE_REDIS_CONFIG') throw err;
      log.error(`cannot connect to broker ${redactUrl(broker)}: ${err instanceof Error ? err.message : String(err)}; retrying in ${delay} ms (attempt ${attempt})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Start beat inside the worker process; returns its stop function. */
async function startEmbeddedBeat(app: Awaited<ReturnType<typeof loadApp>>['app'], log: ReturnType<typeof createLogger>): Promise<() => Promise<void>> {
  const { Beat, openBeatStore } = await import('@celeriac/beat');
  const store = await openBeatStore(app);
  const scheduler = new Beat(app, { store, logger: log.child({ component: 'beat' }) });
  scheduler.start();
  log.info({ store: store.kind }, 'embedded beat started');
  return async () => {
    await scheduler.stop();
    await store.close();
  };
}
