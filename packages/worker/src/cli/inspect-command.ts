import { Argument } from '@commander-js/extra-typings';
import type { BroadcastOptions, CeleriacApp } from '@celeriac/core/spi';
import { CliError } from './load-app.js';
import { destinationOption, EXIT, opsCommand, printJson, replyTimeoutOption, withApp } from './ops.js';

/** How each command's positional words become its keyword arguments (Celery's `celery inspect|control` signatures). */
export const SIGNATURES: Record<string, (words: string[]) => Record<string, unknown>> = {
  query_task: (w) => ({ ids: w }),
  revoke: (w) => ({ task_id: w }),
  // Celery's `control terminate <signal> <id>...`; without a signal word (SIGKILL, KILL, 9) the ids follow
  // at once and the signal is SIGTERM — a first id is never taken for a signal.
  terminate: (w) => (w[0] !== undefined && /^(SIG)?[A-Z]+$|^\d+$/.test(w[0]) ? { signal: w[0], task_id: w.slice(1) } : { signal: 'SIGTERM', task_id: w }),
  rate_limit: ([task_name, rate_limit]) => ({ task_name, rate_limit: rate_limit ?? null }),
  time_limit: ([task_name, soft, hard]) => ({ task_name, soft: soft === undefined ? null : Number(soft), hard: hard === undefined ? null : Number(hard) }),
  add_consumer: ([queue]) => ({ queue }),
  cancel_consumer: ([queue]) => ({ queue }),
  pool_grow: ([n]) => ({ n: n === undefined ? 1 : Number(n) }),
  pool_shrink: ([n]) => ({ n: n === undefined ? 1 : Number(n) }),
  registered: ([flag]) => (flag === 'builtins' ? { builtins: true } : {}),
};

export const INSPECT_METHODS = ['ping', 'stats', 'active', 'reserved', 'scheduled', 'registered', 'revoked', 'active_queues', 'query_task', 'clock'] as const;
export const CONTROL_METHODS = [
  'rate_limit', 'time_limit', 'revoke', 'terminate', 'shutdown', 'pool_grow', 'pool_shrink', 'add_consumer', 'cancel_consumer',
  'enable_events', 'disable_events', 'heartbeat', 'suspend', 'resume',
] as const;

/** Celery's layout: `->  celeriac@host: OK` then the reply, indented. */
export function printReplies(replies: Record<string, unknown>[]): void {
  for (const reply of replies) {
    for (const [node, answer] of Object.entries(reply)) {
      const failed = answer !== null && typeof answer === 'object' && 'error' in answer;
      const shown = answer !== null && typeof answer === 'object' && !Array.isArray(answer) && Object.keys(answer).length === 1 && ('ok' in answer || 'error' in answer)
        ? String(Object.values(answer)[0])
        : JSON.stringify(answer, null, 2);
      process.stdout.write(`->  ${node}: ${failed ? 'ERROR' : 'OK'}\n${shown.split('\n').map((l) => `        ${l}`).join('\n')}\n`);
    }
  }
  process.stdout.write(`\n${replies.length} ${replies.length === 1 ? 'node' : 'nodes'} online.\n`);
}

/** One broadcast from the command line: the replies printed (or `--json`), exit 1 when no worker answered. */
export async function runBroadcast(
  opts: { app?: string; broker?: string; json?: true; destination?: string[]; timeout: number },
  method: string,
  args: Record<string, unknown>,
  options: Partial<BroadcastOptions> = {},
  before?: (app: CeleriacApp) => Promise<void>,
): Promise<void> {
  const replies = await withApp(opts, async (app) => {
    await before?.(app);
    return app.control.broadcast(method, args, { timeout: opts.timeout, ...(opts.destination ? { destination: opts.destination } : {}), ...options });
  });
  if (opts.json) printJson(Object.assign({}, ...replies));
  else if (replies.length) printReplies(replies);
  if (replies.length === 0) {
    if (!opts.json) process.stderr.write('Error: No nodes replied within time constraint\n');
    process.exitCode = EXIT.NEGATIVE;
  }
}

function persistRevocation(ids: string[]) {
  return async (app: CeleriacApp): Promise<void> => {
    const backend = await app.backend();
    if (backend.capabilities.revocations) await backend.revoke(ids, { expiresMs: app.config.revokeExpires });
  };
}

function broadcastCommand(kind: 'inspect' | 'control', methods: readonly string[]) {
  return opsCommand(kind, kind === 'inspect' ? 'Ask the workers (like `celery inspect`).' : 'Tell the workers to change (like `celery control`).')
    .addArgument(new Argument('<method>', 'command').choices(methods))
    .addArgument(new Argument('[args...]', 'the command\'s arguments (e.g. rate_limit tasks.add 10/s; query_task <id>...)'))
    .addOption(destinationOption())
    .addOption(replyTimeoutOption())
    .action(async (method, words, opts) => {
      const args = SIGNATURES[method]?.(words) ?? {};
      if (['rate_limit', 'time_limit'].includes(method) && !words[0]) throw new CliError(`${method} needs a task name`, EXIT.USAGE);
      if (['add_consumer', 'cancel_consumer'].includes(method) && !words[0]) throw new CliError(`${method} needs a queue name`, EXIT.USAGE);
      if (['revoke', 'query_task'].includes(method) && words.length === 0) throw new CliError(`${method} needs at least one task id`, EXIT.USAGE);
      if (method === 'terminate' && (args.task_id as string[]).length === 0) throw new CliError(`${method} needs at least one task id`, EXIT.USAGE);
      // As app.revoke: a revocation is kept in the result backend too, so workers started later honour it.
      const persist = method === 'revoke' || method === 'terminate' ? persistRevocation(args.task_id as string[]) : undefined;
      await runBroadcast(opts, method, args, {}, persist);
    });
}

export const inspectCommand = () => broadcastCommand('inspect', INSPECT_METHODS);
export const controlCommand = () => broadcastCommand('control', CONTROL_METHODS);
