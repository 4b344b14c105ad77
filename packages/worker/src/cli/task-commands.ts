import { Argument, Option } from '@commander-js/extra-typings';
import { ErrorCodes, isCeleriacError, READY_STATES, type CeleriacApp, type ResultMeta } from '@celeriac/core/spi';
import { EXIT, jsonArg, opsCommand, printJson, withApp } from './ops.js';
import { nonNegativeInt, positiveInt } from './options.js';

/** Exit code for a task's state: 0 SUCCESS, 1 FAILURE or REVOKED, 4 not finished. */
function exitFor(state: string): number {
  if (state === 'SUCCESS') return EXIT.OK;
  return READY_STATES.has(state as never) ? EXIT.NEGATIVE : EXIT.NOT_READY;
}

function render(meta: ResultMeta | undefined, id: string): string {
  if (!meta) return `${id}: PENDING (no result stored: unknown, not started, or expired)`;
  const lines = [`${id}: ${meta.status}${meta.date_done ? ` (${meta.date_done})` : ''}`];
  const r = meta.result as { exc_type?: string; exc_message?: unknown } | null;
  if (meta.status === 'FAILURE' || meta.status === 'REVOKED' || meta.status === 'RETRY') {
    const raw = r?.exc_message;
    const message = (Array.isArray(raw) ? raw : [raw ?? '']).map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ');
    lines.push(`${r?.exc_type ?? 'Error'}: ${message}`);
    if (meta.traceback) lines.push(meta.traceback);
  } else if (meta.status === 'SUCCESS') {
    lines.push(JSON.stringify(meta.result));
  } else if (meta.result !== null && meta.result !== undefined) {
    lines.push(JSON.stringify(meta.result));
  }
  return lines.join('\n');
}

async function readResult(app: CeleriacApp, id: string): Promise<ResultMeta | undefined> {
  return (await app.backend()).get(id);
}

/** `celeriac result <id>`: state, and the result or the error. */
export function resultCommand() {
  return opsCommand('result', 'Show a task\'s state and its result or error (exit 0 success, 1 failed/revoked, 4 not finished).')
    .addArgument(new Argument('<id>', 'task id'))
    .addOption(new Option('-f, --follow', 'print each state as it comes (PROGRESS and its info too) until a ready one').env('CELERIAC_FOLLOW'))
    .addOption(new Option('-t, --timeout <ms>', 'with --follow: give up after this long (exit 4)').env('CELERIAC_TIMEOUT').argParser(nonNegativeInt))
    .action(async (id, opts) => {
      if (opts.follow) {
        await withApp(opts, async (app) => {
          const states = app.asyncResult(id).states({ ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}) });
          try {
            for await (const s of states) {
              if (opts.json) process.stdout.write(`${JSON.stringify({ task_id: id, state: s.state, info: s.info })}\n`);
              else process.stdout.write(`${id}: ${s.state}${s.info !== null && s.info !== undefined ? ` ${JSON.stringify(s.info)}` : ''}\n`);
            }
          } catch (err) {
            if (!isCeleriacError(err, ErrorCodes.TIMEOUT)) throw err;
          }
        });
      }
      const meta = await withApp(opts, (app) => readResult(app, id));
      if (opts.follow) {
        process.exitCode = exitFor(meta?.status ?? 'PENDING');
        return;
      }
      if (opts.json) printJson(meta ?? { task_id: id, status: 'PENDING', result: null });
      else process.stdout.write(`${render(meta, id)}\n`);
      process.exitCode = exitFor(meta?.status ?? 'PENDING');
    });
}

const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `celeriac call <task>`: send a task by name, print its id, optionally wait for its result. */
export function callCommand() {
  return opsCommand('call', 'Send a task by name (it may be defined anywhere: here, another service, Python) and print its id.')
    .addArgument(new Argument('<task>', 'task name'))
    .addOption(new Option('--args <json>', 'positional arguments, a JSON array').default('[]').env('CELERIAC_ARGS'))
    .addOption(new Option('--kwargs <json>', 'keyword arguments, a JSON object').default('{}').env('CELERIAC_KWARGS'))
    .addOption(new Option('-Q, --queue <name>', 'queue (default: the route, else the default queue)').env('CELERIAC_QUEUE'))
    .addOption(new Option('--countdown <ms>', 'run no earlier than this many ms from now').env('CELERIAC_COUNTDOWN').argParser(nonNegativeInt))
    .addOption(new Option('--dedup-id <id>', 'send at most one task with this id within --dedup-ttl (a second send prints the first one\'s id)').env('CELERIAC_DEDUP_ID'))
    .addOption(new Option('--dedup-ttl <ms>', 'the deduplication window').env('CELERIAC_DEDUP_TTL').argParser(positiveInt).default(60_000))
    .addOption(new Option('--debounce', 'with --dedup-id: the last send within the window wins and runs after it').env('CELERIAC_DEBOUNCE'))
    .addOption(new Option('--wait', 'wait for the result and print it (exit code follows its state)').env('CELERIAC_WAIT'))
    .addOption(new Option('-t, --timeout <ms>', 'with --wait: how long').env('CELERIAC_TIMEOUT').argParser(nonNegativeInt).default(10_000))
    .action(async (name, opts) => {
      const args = jsonArg('--args', opts.args, isArray, 'a JSON array');
      const kwargs = jsonArg('--kwargs', opts.kwargs, isObject, 'a JSON object');
      await withApp(opts, async (app) => {
        const result = await app.sendTask(name, args, kwargs, {
          ...(opts.queue ? { queue: opts.queue } : {}),
          ...(opts.countdown !== undefined ? { countdown: opts.countdown } : {}),
          ...(opts.dedupId ? { deduplicate: { id: opts.dedupId, ttlMs: opts.dedupTtl, mode: opts.debounce ? ('debounce' as const) : ('first' as const) } } : {}),
        });
        if (!opts.wait) {
          if (opts.json) printJson({ id: result.id });
          else process.stdout.write(`${result.id}\n`);
          return;
        }
        await result.get({ timeout: opts.timeout, propagate: false }).catch(() => undefined);
        const meta = await readResult(app, result.id);
        if (opts.json) printJson(meta ?? { task_id: result.id, status: 'PENDING', result: null });
        else process.stdout.write(`${render(meta, result.id)}\n`);
        process.exitCode = exitFor(meta?.status ?? 'PENDING');
      });
    });
}
