import { Command, Option } from '@commander-js/extra-typings';
import { listenEvents, type CeleryEvent } from '@celeriac/core/spi';
import { appOption, brokerOption, withApp } from './ops.js';
import { nonNegativeInt, positiveInt } from './options.js';

/** One event as a line: `host [time] type: task(id) key=value, ...` (like `celery events --dump`). */
export function formatEvent(e: CeleryEvent): string {
  const { hostname, timestamp, type, uuid, name, ...rest } = e as CeleryEvent & { uuid?: string; name?: string };
  const when = new Date(timestamp * 1000).toISOString().replace('T', ' ').replace('Z', '');
  const what = uuid ? ` ${name ?? ''}(${uuid})` : '';
  const fields = Object.entries(rest)
    .filter(([k]) => k !== 'utcoffset')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
  return `${hostname} [${when}] ${type}:${what} ${fields}`;
}

/** `celeriac events`: a live feed of the workers' events until Ctrl-C (or `--count` / `--duration`). */
export function eventsCommand(): Command {
  return new Command('events')
    .description('Print the live event feed (task and worker events; workers send them with -E or `control enable_events`).')
    .addOption(appOption())
    .addOption(brokerOption())
    .addOption(new Option('--json', 'one JSON event per line').env('CELERIAC_JSON'))
    .addOption(new Option('-k, --filter <pattern>', 'topic pattern of event types, dots for dashes (task.#, worker.heartbeat, *.failed)').default('#').env('CELERIAC_EVENTS_FILTER'))
    .addOption(new Option('--count <n>', 'stop after this many events').env('CELERIAC_EVENTS_COUNT').argParser(positiveInt))
    .addOption(new Option('--duration <ms>', 'stop after this long').env('CELERIAC_EVENTS_DURATION').argParser(nonNegativeInt))
    .action(async (opts) => {
      await withApp(opts, async (app) => {
        let seen = 0;
        let finish: () => void = () => undefined;
        const done = new Promise<void>((resolve) => (finish = resolve));
        const stop = await listenEvents(
          await app.transport(),
          (event) => {
            if (opts.count !== undefined && seen >= opts.count) return;
            seen++;
            process.stdout.write(`${opts.json ? JSON.stringify(event) : formatEvent(event)}\n`);
            if (opts.count !== undefined && seen >= opts.count) finish();
          },
          opts.filter,
        );
        // Ask the workers for a heartbeat now, as Celery's receivers do, so they show up at once.
        await app.control.broadcast('heartbeat', {}, { reply: false });
        // On stderr, so a --json feed on stdout stays pure; scripts can wait for this line.
        process.stderr.write('-> listening for events (Ctrl-C to stop)\n');
        const timer = opts.duration !== undefined ? setTimeout(finish, opts.duration) : undefined;
        process.once('SIGINT', finish);
        process.once('SIGTERM', finish);
        await done;
        clearTimeout(timer);
        await stop();
      });
    });
}
