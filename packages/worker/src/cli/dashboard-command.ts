import { Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { parseDuration } from '@celeriac/core/spi';
import { appOption, brokerOption, opsApp } from './ops.js';
import { nonNegativeInt, positiveInt } from './options.js';

function port(value: string): number {
  const n = nonNegativeInt(value);
  if (n > 65535) throw new InvalidArgumentError(`expected a TCP port (0–65535), got ${value}`);
  return n;
}

function duration(value: string): number {
  try {
    return parseDuration(/^\d+$/.test(value) ? Number(value) : value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * `celeriac dashboard`: the web dashboard (a Flower replacement) — task
 * history kept across restarts, workers, queues, dead letters, schedules, and
 * actions — for celeriac and Python Celery workers alike.
 */
export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('Serve the web dashboard and its JSON API: task history (kept across restarts), workers, queues, dead letters, schedules.')
    .addOption(appOption())
    .addOption(brokerOption())
    .addOption(new Option('-p, --port <port>', 'TCP port (0: any free one)').env('CELERIAC_DASHBOARD_PORT').argParser(port).default(5555))
    .addOption(new Option('--host <address>', 'address to bind; anything but loopback needs --auth-token or --basic-auth').env('CELERIAC_DASHBOARD_HOST').default('127.0.0.1'))
    .addOption(new Option('--history <path|url>', 'task history: a SQLite file (default ./celeriac-dashboard.db) or redis://…').env('CELERIAC_DASHBOARD_HISTORY'))
    .addOption(new Option('--history-max-tasks <n>', 'keep at most this many tasks').env('CELERIAC_DASHBOARD_HISTORY_MAX_TASKS').argParser(positiveInt).default(100_000))
    .addOption(new Option('--history-max-age <duration>', 'forget tasks older than this (7d, 12h, ...)').env('CELERIAC_DASHBOARD_HISTORY_MAX_AGE').argParser(duration).default(7 * 86_400_000, '7d'))
    .addOption(new Option('--auth-token <token>', 'token for sessions and Authorization: Bearer (default: one generated at start)').env('CELERIAC_DASHBOARD_TOKEN'))
    .addOption(new Option('--basic-auth <user:password>', 'HTTP basic authentication').env('CELERIAC_DASHBOARD_BASIC_AUTH'))
    .action(async (opts) => {
      // Loaded here: `celeriac worker` and the other commands never load hono or the history store.
      const { startDashboard } = await import('../dashboard/start.js');
      const { resolveAuth } = await import('../dashboard/auth.js');
      // Refuse a bad bind before connecting anything.
      resolveAuth({ host: opts.host, token: opts.authToken, basicAuth: opts.basicAuth });
      const app = await opsApp(opts);
      let dashboard;
      try {
        dashboard = await startDashboard({
          app,
          host: opts.host,
          port: opts.port,
          token: opts.authToken,
          basicAuth: opts.basicAuth,
          history: opts.history,
          retention: { maxTasks: opts.historyMaxTasks, maxAgeMs: opts.historyMaxAge },
        });
      } catch (err) {
        await app.close().catch(() => undefined);
        throw err;
      }
      const running = dashboard;
      process.stdout.write(`dashboard listening on ${running.url}\n`);
      let stopping = false;
      const stop = (): void => {
        // A second Ctrl-C while closing: leave now.
        if (stopping) process.exit(130);
        stopping = true;
        void running
          .close()
          .then(() => Promise.race([app.close(), new Promise((r) => setTimeout(r, 2000).unref())]))
          .catch((err: unknown) => process.stderr.write(`dashboard: closing: ${(err as Error).message}\n`))
          .finally(() => process.exit(0));
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
