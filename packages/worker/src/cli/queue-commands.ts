import { Argument, Command, Option } from '@commander-js/extra-typings';
import { ErrorCodes, type DeadLetterRecord } from '@celeriac/core/spi';
import { CliError } from './load-app.js';
import { appQueues, confirm, EXIT, opsCommand, printJson, table, withApp } from './ops.js';
import { nonNegativeInt, positiveInt, queueList } from './options.js';

/** `celeriac purge`: empty queues (ready messages; those being run are not touched), asking first. */
export function purgeCommand() {
  return opsCommand('purge', 'Delete every ready message from the queues (default: the app\'s queues), asking first unless --yes.')
    .addOption(new Option('-Q, --queues <list>', 'comma-separated queues to purge').env('CELERIAC_QUEUES').argParser(queueList))
    .addOption(new Option('-y, --yes', 'do not ask').env('CELERIAC_YES'))
    .action(async (opts) => {
      await withApp(opts, async (app) => {
        const transport = await app.transport();
        const queues = opts.queues ?? appQueues(app);
        // The lengths are only for the question: with --yes, nothing is read twice.
        const ask = async (): Promise<boolean> => {
          const total = (await Promise.all(queues.map((q) => transport.length(q)))).reduce((a, b) => a + b, 0);
          return confirm(`Purge ${total} message(s) from ${queues.length} queue(s): ${queues.join(', ')}?`);
        };
        if (!opts.yes && !(await ask())) {
          process.stderr.write('not purged\n');
          process.exitCode = EXIT.NEGATIVE;
          return;
        }
        const purged: Record<string, number> = {};
        for (const q of queues) purged[q] = await transport.purge(q);
        const n = Object.values(purged).reduce((a, b) => a + b, 0);
        if (opts.json) printJson({ purged });
        else process.stdout.write(`Purged ${n} message(s) from ${queues.length} queue(s).\n`);
      });
    });
}

function iso(ms: number | null | undefined): string {
  return typeof ms === 'number' ? new Date(ms).toISOString() : '-';
}

/** A dead letter as `failed show` prints it. */
function describe(r: DeadLetterRecord, stored: { status: string; date_done: string | null } | undefined): string {
  const h = r.wire.headers;
  const lines = [
    `id         ${r.id}`,
    `task       ${r.taskName ?? '(unreadable)'}`,
    `queue      ${r.queue}`,
    `reason     ${r.reason}`,
    `error      ${r.message}`,
    `deliveries ${r.deliveryCount}`,
    `args       ${typeof h.argsrepr === 'string' ? h.argsrepr : '-'}`,
    `kwargs     ${typeof h.kwargsrepr === 'string' ? h.kwargsrepr : '-'}`,
    `eta        ${typeof h.eta === 'string' ? h.eta : '-'}`,
    `ended      ${iso(r.failedAt)} (moved to the dead-letter store)`,
    `result     ${stored ? `${stored.status}${stored.date_done ? ` at ${stored.date_done}` : ''}` : 'none stored'}`,
  ];
  if (r.traceback) lines.push('traceback', ...r.traceback.split('\n').map((l) => `  ${l}`));
  return lines.join('\n');
}

/** `celeriac failed list|show|requeue|purge`: the dead-letter store. */
export function failedCommand() {
  const failed = new Command('failed').description('The dead-letter store: messages refused (bad input, unknown task) or delivered too often.');
  failed.addCommand(
    opsCommand('list', 'List dead letters with reason, queue and time, oldest first, a page at a time.')
      .addOption(new Option('--limit <n>', 'at most this many (1–1000)').env('CELERIAC_LIMIT').argParser(positiveInt).default(50))
      .addOption(new Option('--offset <n>', 'skip this many of the oldest').env('CELERIAC_OFFSET').argParser(nonNegativeInt).default(0))
      .action(async (opts) => {
        const [records, total] = await withApp(opts, async (app) => {
          const transport = await app.transport();
          return Promise.all([transport.listDeadLetters({ offset: opts.offset, limit: opts.limit }), transport.deadLetterCount()]);
        });
        if (opts.json) {
          printJson(records.map(({ wire: _wire, ...r }) => r));
          return;
        }
        if (total === 0) {
          process.stdout.write('no failed tasks\n');
          return;
        }
        const rows = [['id', 'task', 'reason', 'queue', 'failed at']];
        for (const r of records) rows.push([r.id, r.taskName ?? '-', r.reason, r.queue, iso(r.failedAt)]);
        const shown = records.length === total ? `${total} failed task(s)` : `${records.length} of ${total} failed task(s) shown (--offset ${opts.offset} --limit ${opts.limit})`;
        process.stdout.write(`${records.length ? `${table(rows)}\n\n` : ''}${shown}\n`);
      }),
  );
  failed.addCommand(
    opsCommand('show', 'One dead letter in full: reason, origin queue, times, the error with its traceback.')
      .addArgument(new Argument('<id>', 'task id'))
      .action(async (id, opts) => {
        await withApp(opts, async (app) => {
          const [record] = await app.findDeadLetters([id]);
          if (!record) throw new CliError(`no failed task with id ${id}`, EXIT.NEGATIVE, ErrorCodes.DEAD_LETTER_UNKNOWN);
          const stored = await (await app.backend()).get(id).catch(() => undefined);
          if (opts.json) printJson({ ...record, result: stored ?? null });
          else process.stdout.write(`${describe(record, stored)}\n`);
        });
      }),
  );
  failed.addCommand(
    opsCommand('requeue', 'Put dead letters back on their original queue (the given ids, or --all).')
      .addArgument(new Argument('[ids...]', 'task ids'))
      .addOption(new Option('--all', 'every dead letter').env('CELERIAC_ALL'))
      .action(async (ids, opts) => {
        if (!opts.all && ids.length === 0) throw new CliError('give task ids, or --all', EXIT.USAGE);
        const n = await withApp(opts, (app) => app.requeueDeadLetters(opts.all ? undefined : ids));
        if (opts.json) printJson({ requeued: n });
        else process.stdout.write(`Requeued ${n} task(s).\n`);
        if (n === 0 && ids.length > 0) process.exitCode = EXIT.NEGATIVE;
      }),
  );
  failed.addCommand(
    opsCommand('purge', 'Delete every dead letter, asking first unless --yes.')
      .addOption(new Option('-y, --yes', 'do not ask').env('CELERIAC_YES'))
      .action(async (opts) => {
        await withApp(opts, async (app) => {
          const transport = await app.transport();
          const count = await transport.deadLetterCount();
          if (!opts.yes && !(await confirm(`Delete ${count} failed task(s)?`))) {
            process.stderr.write('not purged\n');
            process.exitCode = EXIT.NEGATIVE;
            return;
          }
          // As many as were there when asked, oldest first, a page at a time.
          let n = 0;
          for (let left = count; left > 0; ) {
            const page = await transport.listDeadLetters({ limit: Math.min(left, 100) });
            if (page.length === 0) break;
            for (const r of page) if (await transport.takeDeadLetter(r.id)) n++;
            left -= page.length;
          }
          if (opts.json) printJson({ purged: n });
          else process.stdout.write(`Deleted ${n} failed task(s).\n`);
        });
      }),
  );
  return failed;
}
