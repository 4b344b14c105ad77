import { Command, Option } from '@commander-js/extra-typings';
import type { CeleriacApp } from '@celeriac/core/spi';
import { readSwitches, type FleetSwitches } from '../switches.js';
import { appQueues, bar, opsCommand, printJson, table, withApp } from './ops.js';
import { nonNegativeInt, positiveInt, queueList } from './options.js';

export interface StatusReport {
  readonly broker: string;
  readonly queues: { name: string; length: number }[];
  /** Delayed messages (countdown, eta, retries) waiting broker-side; null when the broker cannot count them. */
  readonly delayed: number | null;
  readonly deadLetters: number;
  /** The durable fleet switches (`celeriac suspend`, `celeriac pause <queue>`); null when the backend keeps none (`rpc://`). */
  readonly fleet: FleetSwitches | null;
  readonly workers: {
    hostname: string;
    active: number | null;
    processed: number | null;
    uptime: number | null;
    suspended: boolean | null;
    /** Whether it receives work: `consuming`, `connecting`, `failing`, `suspended`, `stopped`; null when it does not say (a Python worker). */
    consumer: string | null;
    /** Why it is not consuming (with `failing`). */
    consumerError: string | null;
    events: boolean | null;
    /** Seconds since its last worker-heartbeat event; null with events off (or a Python worker). */
    lastHeartbeatAgo: number | null;
    queues: string[];
  }[];
}

interface StatsReply {
  total?: Record<string, number>;
  uptime?: number;
  celeriac?: { active?: number; suspended?: boolean; consumer?: { state?: string; error?: string | null }; events?: boolean; lastHeartbeat?: number | null; queues?: string[] };
}

export async function statusReport(app: CeleriacApp, extraQueues: readonly string[], timeout: number): Promise<StatusReport> {
  const transport = await app.transport();
  const [stats, activeQueues] = await Promise.all([
    app.control.broadcast('stats', {}, { timeout }),
    app.control.inspect('active_queues', {}, { timeout }),
  ]);
  const workers: StatusReport['workers'] = stats.flatMap((reply) =>
    Object.entries(reply).map(([hostname, raw]) => {
      const s = (raw ?? {}) as StatsReply;
      const consumed = ((activeQueues[hostname] as { name?: string }[] | undefined) ?? []).map((q) => q.name).filter((n): n is string => typeof n === 'string');
      const hb = s.celeriac?.lastHeartbeat;
      return {
        hostname,
        active: s.celeriac?.active ?? null,
        processed: s.total ? Object.values(s.total).reduce((a, b) => a + b, 0) : null,
        uptime: s.uptime ?? null,
        suspended: s.celeriac?.suspended ?? null,
        consumer: s.celeriac?.consumer?.state ?? null,
        consumerError: s.celeriac?.consumer?.error ?? null,
        events: s.celeriac?.events ?? null,
        lastHeartbeatAgo: typeof hb === 'number' ? Math.max(0, Math.round(Date.now() / 1000 - hb)) : null,
        queues: consumed,
      };
    }),
  );
  workers.sort((a, b) => a.hostname.localeCompare(b.hostname));
  const names = [...new Set([...appQueues(app), ...extraQueues, ...workers.flatMap((w) => w.queues)])];
  const queues = await Promise.all(names.map(async (name) => ({ name, length: await transport.length(name) })));
  const fleet = await readSwitches(await app.backend());
  return { broker: app.config.broker.redacted, queues, delayed: await transport.delayedCount(), deadLetters: await transport.deadLetterCount(), fleet, workers };
}

/** The state column: `running` while it consumes; otherwise what it is doing instead (`failing: <why>`). */
function workerState(w: StatusReport['workers'][number]): string {
  if (w.suspended) return 'suspended';
  if (w.consumer === 'paused') return 'paused (every queue)';
  if (w.consumer === null || w.consumer === 'consuming') return 'running';
  return w.consumerError ? `NOT CONSUMING (${w.consumer}: ${w.consumerError})` : `NOT CONSUMING (${w.consumer})`;
}

/** The report as a terminal screen (like `rq info`): queue bars, counts, then workers. */
export function renderStatus(r: StatusReport): string {
  const max = Math.max(1, ...r.queues.map((q) => q.length));
  const width = Math.max(...r.queues.map((q) => q.name.length), 7);
  const lines = [`broker ${r.broker}`];
  if (r.fleet?.suspended) lines.push('fleet  SUSPENDED: no worker takes new tasks (`celeriac resume` lifts it)');
  lines.push('', 'queues');
  const paused = new Set(r.fleet?.pausedQueues ?? []);
  for (const q of r.queues) lines.push(`  ${q.name.padEnd(width)}  ${bar(q.length, max)} ${q.length}${paused.has(q.name) ? '  PAUSED (`celeriac resume ' + q.name + '`)' : ''}`);
  lines.push(`  ${'delayed'.padEnd(width)}  ${r.delayed === null ? 'not counted by this broker' : r.delayed}`);
  lines.push(`  ${'failed'.padEnd(width)}  ${r.deadLetters} (celeriac failed list)`, '');
  if (r.workers.length === 0) {
    lines.push('workers: none replied');
  } else {
    const rows = [['worker', 'state', 'active', 'processed', 'uptime', 'heartbeat', 'queues']];
    for (const w of r.workers) {
      rows.push([
        w.hostname,
        workerState(w),
        String(w.active ?? '?'),
        String(w.processed ?? '?'),
        w.uptime === null ? '?' : `${w.uptime}s`,
        w.lastHeartbeatAgo === null ? (w.events === false ? 'events off' : '?') : `${w.lastHeartbeatAgo}s ago`,
        w.queues.join(','),
      ]);
    }
    lines.push(`workers (${r.workers.length})`, ...table(rows).split('\n').map((l) => `  ${l}`));
  }
  return lines.join('\n');
}

export function statusCommand(): Command {
  return opsCommand('status', 'Queues with their lengths, delayed and failed counts, and the workers (like `rq info`).')
    .addOption(new Option('-Q, --queues <list>', 'also show these queues').env('CELERIAC_QUEUES').argParser(queueList))
    .addOption(new Option('-t, --timeout <ms>', 'how long to wait for workers').env('CELERIAC_TIMEOUT').argParser(nonNegativeInt).default(1000))
    .addOption(new Option('-i, --interval <s>', 'refresh in place every this many seconds (Ctrl-C to stop)').env('CELERIAC_INTERVAL').argParser(positiveInt))
    .action(async (opts) => {
      await withApp(opts, async (app) => {
        let stopped = false;
        process.once('SIGINT', () => (stopped = true));
        do {
          const report = await statusReport(app, opts.queues ?? [], opts.timeout);
          if (opts.json) printJson(report);
          else process.stdout.write(`${opts.interval ? '\x1b[H\x1b[2J' : ''}${renderStatus(report)}\n`);
          if (!opts.interval) break;
          const until = Date.now() + opts.interval * 1000;
          while (!stopped && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
        } while (!stopped);
      });
    });
}
