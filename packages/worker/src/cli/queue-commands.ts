import { Argument, Command, Option } from '@commander-js/extra-typings';
import { ErrorCodes, hasFailedRegistry, type CeleriacApp, type DeadLetterRecord, type FailedTaskRecord, type ResultBackend } from '@celeriac/core/spi';
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

/** A failed task from the registry as `failed show` prints it. */
function describeFailed(r: FailedTaskRecord): string {
  const h = r.wire.headers;
  const lines = [
    `id         ${r.id}`,
    `kind       failed (raised with no retry left; kept in the failed-task registry)`,
    `task       ${r.taskName}`,
    `queue      ${r.queue}`,
    `error      ${r.excType}: ${r.excMessage}`,
    `retries    ${r.retries}`,
    `worker     ${r.worker}`,
    `args       ${typeof h.argsrepr === 'string' ? h.argsrepr : '-'}`,
    `kwargs     ${typeof h.kwargsrepr === 'string' ? h.kwargsrepr : '-'}`,
    `received   ${iso(r.receivedAt)}`,
    `started    ${iso(r.startedAt)}`,
    `ended      ${iso(r.endedAt)}`,
  ];
  if (r.traceback) lines.push('traceback', ...r.traceback.split('\n').map((l) => `  ${l}`));
  return lines.join('\n');
}

type Listed = { readonly kind: 'dead-letter'; readonly record: DeadLetterRecord } | { readonly kind: 'failed'; readonly record: FailedTaskRecord };

/** The backend, when it keeps a failed-task registry (`rpc://` does not: dead letters only then). */
async function registryOf(app: CeleriacApp): Promise<ResultBackend | undefined> {
  const backend = await app.backend();
  return hasFailedRegistry(backend) ? backend : undefined;
}

/** Dead letters (oldest first), then failed tasks (oldest first), as one list paged by offset and limit. */
async function listBoth(app: CeleriacApp, offset: number, limit: number): Promise<{ items: Listed[]; total: number }> {
  const transport = await app.transport();
  const registry = await registryOf(app);
  const [dead, failed] = await Promise.all([transport.deadLetterCount(), registry ? registry.failedCount!() : Promise.resolve(0)]);
  const items: Listed[] = [];
  if (offset < dead) for (const record of await transport.listDeadLetters({ offset, limit: Math.min(limit, dead - offset) })) items.push({ kind: 'dead-letter', record });
  const left = limit - items.length;
  if (registry && left > 0) {
    for (const record of await registry.listFailed!({ offset: Math.max(0, offset - dead), limit: left })) items.push({ kind: 'failed', record });
  }
  return { items, total: dead + failed };
}

/** `celeriac failed list|show|requeue|purge`: dead letters (refused or poison messages) and the failed-task registry (tasks that raised with no retry left). */
export function failedCommand() {
  const failed = new Command('failed').description(
    'Tasks that did not succeed: dead letters (refused: bad input, unknown task; or delivered too often) and failed tasks (raised with no retry left, in the registry).',
  );
  failed.addCommand(
    opsCommand('list', 'List dead letters, then failed tasks, each oldest first, a page at a time; the last column says which.')
      .addOption(new Option('--limit <n>', 'at most this many (1–1000)').env('CELERIAC_LIMIT').argParser(positiveInt).default(50))
      .addOption(new Option('--offset <n>', 'skip this many of the oldest').env('CELERIAC_OFFSET').argParser(nonNegativeInt).default(0))
      .action(async (opts) => {
        const { items, total } = await withApp(opts, (app) => listBoth(app, opts.offset, opts.limit));
        if (opts.json) {
          printJson(items.map(({ kind, record: { wire: _wire, ...r } }) => ({ kind, ...r })));
          return;
        }
        if (total === 0) {
          process.stdout.write('no failed tasks\n');
          return;
        }
        const rows = [['id', 'task', 'reason', 'queue', 'failed at', 'kind']];
        for (const item of items) {
          if (item.kind === 'dead-letter') {
            const r = item.record;
            rows.push([r.id, r.taskName ?? '-', r.reason, r.queue, iso(r.failedAt), 'dead letter']);
          } else {
            const r = item.record;
            rows.push([r.id, r.taskName, ErrorCodes.TASK_FAILED, r.queue, iso(r.endedAt), `failed: ${r.excType}`]);
          }
        }
        const shown = items.length === total ? `${total} failed task(s)` : `${items.length} of ${total} failed task(s) shown (--offset ${opts.offset} --limit ${opts.limit})`;
        process.stdout.write(`${items.length ? `${table(rows)}\n\n` : ''}${shown}\n`);
      }),
  );
  failed.addCommand(
    opsCommand('show', 'One dead letter or failed task in full: reason, origin queue, times, the error with its traceback.')
      .addArgument(new Argument('<id>', 'task id'))
      .action(async (id, opts) => {
        await withApp(opts, async (app) => {
          const [record] = await app.findDeadLetters([id]);
          const stored = await (await app.backend()).get(id).catch(() => undefined);
          if (record) {
            if (opts.json) printJson({ kind: 'dead-letter', ...record, result: stored ?? null });
            else process.stdout.write(`${describe(record, stored)}\n`);
            return;
          }
          const kept = await (await registryOf(app))?.getFailed!(id);
          if (!kept) throw new CliError(`no failed task with id ${id}`, EXIT.NEGATIVE, ErrorCodes.DEAD_LETTER_UNKNOWN);
          if (opts.json) printJson({ kind: 'failed', ...kept, result: stored ?? null });
          else process.stdout.write(`${describeFailed(kept)}\n`);
        });
      }),
  );
  failed.addCommand(
    opsCommand('requeue', 'Send dead letters and failed tasks again, as they were sent, to their original queue (the given ids, or --all).')
      .addArgument(new Argument('[ids...]', 'task ids'))
      .addOption(new Option('--all', 'every dead letter and failed task').env('CELERIAC_ALL'))
      .action(async (ids, opts) => {
        if (!opts.all && ids.length === 0) throw new CliError('give task ids, or --all', EXIT.USAGE);
        const n = await withApp(opts, async (app) => {
          const registry = await registryOf(app);
          const dead = await app.requeueDeadLetters(opts.all ? undefined : ids);
          const failedOnes = registry ? await app.requeueFailed(opts.all ? undefined : ids) : 0;
          return dead + failedOnes;
        });
        if (opts.json) printJson({ requeued: n });
        else process.stdout.write(`Requeued ${n} task(s).\n`);
        if (n === 0 && ids.length > 0) process.exitCode = EXIT.NEGATIVE;
      }),
  );
  failed.addCommand(
    opsCommand('purge', 'Delete every dead letter and failed task, asking first unless --yes.')
      .addOption(new Option('-y, --yes', 'do not ask').env('CELERIAC_YES'))
      .action(async (opts) => {
        await withApp(opts, async (app) => {
          const transport = await app.transport();
          const registry = await registryOf(app);
          const count = (await transport.deadLetterCount()) + (registry ? await registry.failedCount!() : 0);
          if (!opts.yes && !(await confirm(`Delete ${count} failed task(s)?`))) {
            process.stderr.write('not purged\n');
            process.exitCode = EXIT.NEGATIVE;
            return;
          }
          // As many as were there when asked, oldest first, a page at a time.
          let n = 0;
          for (let left = await transport.deadLetterCount(); left > 0; ) {
            const page = await transport.listDeadLetters({ limit: Math.min(left, 100) });
            if (page.length === 0) break;
            for (const r of page) if (await transport.takeDeadLetter(r.id)) n++;
            left -= page.length;
          }
          for (let left = registry ? await registry.failedCount!() : 0; left > 0; ) {
            const page = await registry!.listFailed!({ offset: 0, limit: Math.min(left, 100) });
            if (page.length === 0) break;
            for (const r of page) if (await registry!.takeFailed!(r.id)) n++;
            left -= page.length;
          }
          if (opts.json) printJson({ purged: n });
          else process.stdout.write(`Deleted ${n} failed task(s).\n`);
        });
      }),
  );
  return failed;
}
