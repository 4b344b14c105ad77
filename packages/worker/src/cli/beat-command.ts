import { Command, Option } from '@commander-js/extra-typings';
import { createLogger } from '../logger.js';
import { loadApp } from './load-app.js';
import { positiveInt } from './options.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function beatCommand(): Command {
  const beat = new Command('beat')
    .description('Run the periodic scheduler (like `celery beat`); safe to run twice: one leader sends, each slot once.')
    .addOption(new Option('-A, --app <module>', 'module exporting the app').env('CELERIAC_APP').makeOptionMandatory())
    .addOption(new Option('--store <url>', 'where the leader lock and last runs live: sqlite:///path/beat.db or redis://host/0 (default: the broker, else the result backend, when SQLite or Redis)'))
    .addOption(new Option('--lease <ms>', 'leader lease: a dead leader is replaced within this long').env('CELERIAC_BEAT_LEASE').argParser(positiveInt).default(10_000))
    .addOption(new Option('-l, --loglevel <level>', 'log level').choices(LEVELS).default('info' as const).env('CELERIAC_LOGLEVEL'))
    .action(async (opts) => {
      const log = createLogger(opts.loglevel, 'celeriac-beat');
      // Loaded here, not at the top: a worker process that never schedules does not carry the scheduler.
      const { Beat, openBeatStore } = await import('@celeriac/beat');
      const { app } = await loadApp(opts.app);
      // CELERIAC_CLOCK_OFFSET_MS skews this process's clock (tests of clock skew); a Redis store ignores it and uses Redis TIME.
      const offset = Number(process.env.CELERIAC_CLOCK_OFFSET_MS ?? 0);
      const store = await openBeatStore(app, { clock: () => Date.now() + offset, ...(opts.store ? { store: opts.store } : {}) });
      const scheduler = new Beat(app, { store, leaseMs: opts.lease, logger: log });
      const entries = await scheduler.entries();
      log.info({ store: store.kind, entries: entries.map((e) => `${e.entry.name}: ${e.schedule.description}`) }, 'beat ready');
      scheduler.start();
      const stop = (): void => {
        void scheduler
          .stop()
          .then(() => store.close())
          .then(() => app.close())
          .finally(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  beat
    .command('list')
    .description('Show the periodic entries with their last and next run (-A as for beat)')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      // -A belongs to `beat` itself: `celeriac beat list -A tasks.ts` and `celeriac beat -A tasks.ts list` both work.
      const { BeatSchedules, openBeatStore } = await import('@celeriac/beat');
      const { app } = await loadApp(beat.opts().app);
      const given = beat.opts().store;
      const store = await openBeatStore(app, given ? { store: given } : {});
      const views = await new BeatSchedules(store, () => app.beat.entries(), app.beat.timezone).list();
      const iso = (t: number | null | undefined): string => (t ? new Date(t).toISOString() : '—');
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(views.map((v) => ({ ...v.entry, source: v.source, lastRunAt: iso(v.state?.lastRunAt), nextRunAt: iso(v.state?.nextRunAt) })))}\n`);
      } else {
        for (const v of views) {
          process.stdout.write(
            `${v.entry.name.padEnd(24)} ${v.entry.task.padEnd(24)} ${JSON.stringify(v.entry.schedule).padEnd(36)} ${v.entry.enabled ? 'enabled ' : 'disabled'}  last ${iso(v.state?.lastRunAt)}  next ${iso(v.state?.nextRunAt)}  (${v.source})\n`,
          );
        }
      }
      await store.close();
      await app.close();
    });
  return beat;
}
