/**
 * Wiring: the history store, the fleet monitor, the service and the HTTP
 * server, started in that order and closed in the reverse one. The CLI
 * command (cli/dashboard-command.ts) loads this module lazily, so a worker
 * process never loads hono.
 */
import type { CeleriacApp } from '@celeriac/core/spi';
import { secretScrubber } from './feed.js';
import { resolveAuth, type AuthOptions } from './auth.js';
import { FleetMonitor, type FleetIntervals } from './fleet.js';
import { openHistory } from './history/open.js';
import type { RetentionPolicy } from './model.js';
import { createDashboardApp, listen } from './server.js';
import { FleetDashboardService } from './service.js';

export interface DashboardOptions extends AuthOptions {
  readonly app: CeleriacApp;
  readonly port: number;
  /** SQLite path or URL, or a redis:// URL; undefined: `celeriac-dashboard.db` in `cwd`. */
  readonly history?: string | undefined;
  readonly retention: RetentionPolicy;
  readonly cwd?: string;
  readonly intervals?: Partial<FleetIntervals>;
  readonly log?: (line: string) => void;
}

export interface RunningDashboard {
  /** The URL to open: with `?token=` when the token was generated here (the only place it is shown). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The host part of a URL for `host` (IPv6 in brackets). */
const urlHost = (host: string) => (host.includes(':') && !host.startsWith('[') ? `[${host}]` : host);

/** Start the dashboard; a bad option is a ConfigError before anything is opened. */
export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const auth = resolveAuth(options);
  const log = options.log ?? ((line: string) => process.stderr.write(`dashboard: ${line}\n`));
  const history = await openHistory(options.history, options.cwd ?? process.cwd());
  const fleet = new FleetMonitor({ app: options.app, history, retention: options.retention, log, ...(options.intervals ? { intervals: options.intervals } : {}) });
  const service = new FleetDashboardService(options.app, history, fleet);
  const scrub = secretScrubber(options.app);
  let server: Awaited<ReturnType<typeof listen>> | undefined;
  try {
    await fleet.start();
    server = await listen(await createDashboardApp({ service, auth, scrub, log }), options.host, options.port);
  } catch (err) {
    await fleet.close().catch(() => undefined);
    await history.close().catch(() => undefined);
    throw err;
  }
  const running = server;
  const base = `http://${urlHost(options.host)}:${running.port}/`;
  let closing: Promise<void> | undefined;
  return {
    url: auth.tokenConfigured ? base : `${base}?token=${auth.token}`,
    port: running.port,
    close: () =>
      (closing ??= (async () => {
        await running.close();
        await fleet.close();
        await service.close();
        await history.close();
      })()),
  };
}
