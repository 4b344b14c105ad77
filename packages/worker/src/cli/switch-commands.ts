import { Argument } from '@commander-js/extra-typings';
import { ErrorCodes, type CeleriacApp } from '@celeriac/core/spi';
import { pausedFlag, readSwitches, SUSPENDED_FLAG, type FleetSwitches } from '../switches.js';
import { printReplies } from './inspect-command.js';
import { CliError } from './load-app.js';
import { destinationOption, EXIT, opsCommand, printJson, replyTimeoutOption, withApp } from './ops.js';

/** The app's backend, when it keeps fleet switches; otherwise a clear refusal naming what to use. */
async function switchBackend(app: CeleriacApp) {
  const backend = await app.backend();
  if (!backend.capabilities.fleetFlags || !backend.writeFlag) {
    throw new CliError(
      `fleet-wide switches live in the result backend, and the ${backend.kind} backend keeps none; use a Redis or SQLite result backend (or -d <workers> to switch running workers only, until they restart)`,
      EXIT.USAGE,
      ErrorCodes.CAPABILITY_MISSING,
    );
  }
  return backend;
}

type SwitchOpts = { app?: string; broker?: string; json?: true; destination?: string[]; timeout: number };

/**
 * Turn switches and tell the running workers at once (they also read the switches every 2 s,
 * and at start). With `-d`, only the named running workers, and nothing is remembered.
 */
async function turn(opts: SwitchOpts, flags: Record<string, string | null>, broadcast: 'suspend' | 'resume' | null): Promise<void> {
  const report = await withApp(opts, async (app) => {
    if (!opts.destination) {
      const backend = await switchBackend(app);
      for (const [name, value] of Object.entries(flags)) await backend.writeFlag!(name, value);
    }
    const replies = broadcast ? await app.control.broadcast(broadcast, {}, { timeout: opts.timeout, ...(opts.destination ? { destination: opts.destination } : {}) }) : [];
    const switches: FleetSwitches | null = opts.destination ? null : await readSwitches(await app.backend());
    return { switches, list: replies, replies: Object.assign({}, ...replies) as Record<string, unknown> };
  });
  if (opts.json) {
    printJson({ fleet: report.switches, workers: report.replies });
  } else {
    if (report.switches) {
      const { suspended, pausedQueues } = report.switches;
      process.stdout.write(`fleet: ${suspended ? 'suspended' : 'running'}; paused queues: ${pausedQueues.length ? pausedQueues.join(', ') : 'none'}\n`);
    }
    if (broadcast) printReplies(report.list);
    else process.stdout.write('running workers follow within 2 s\n');
  }
  if (opts.destination && Object.keys(report.replies).length === 0) process.exitCode = EXIT.NEGATIVE;
}

/** `celeriac suspend`: no worker takes new tasks — running ones, and ones started later — until `celeriac resume`. */
export function suspendCommand() {
  return opsCommand('suspend', 'Workers stop taking new tasks (running ones finish), and workers started later start suspended, until `celeriac resume` (RQ\'s `rq suspend`). With -d, only those running workers, until they restart.')
    .addOption(destinationOption())
    .addOption(replyTimeoutOption())
    .action((opts) => turn(opts, { [SUSPENDED_FLAG]: '1' }, 'suspend'));
}

/** `celeriac resume [queues...]`: lift `celeriac suspend`, or resume paused queues. */
export function resumeCommand() {
  return opsCommand('resume', 'Lift `celeriac suspend` (no queues given), or resume the given paused queues.')
    .addArgument(new Argument('[queues...]', 'paused queues to resume'))
    .addOption(destinationOption())
    .addOption(replyTimeoutOption())
    .action((queues, opts) => {
      if (queues.length === 0) return turn(opts, { [SUSPENDED_FLAG]: null }, 'resume');
      if (opts.destination) throw new CliError('a queue is paused and resumed fleet-wide: give no -d with queues', EXIT.USAGE);
      return turn(opts, Object.fromEntries(queues.map((q) => [pausedFlag(q), null])), null);
    });
}

/** `celeriac pause <queues...>`: no worker takes tasks from these queues until `celeriac resume <queues...>` (BullMQ's queue.pause()). */
export function pauseCommand() {
  return opsCommand('pause', 'Stop delivery from these queues fleet-wide (messages stay queued; running tasks finish) until `celeriac resume <queue>`.')
    .addArgument(new Argument('<queues...>', 'queues to pause'))
    .addOption(replyTimeoutOption())
    .action((queues, opts) => turn(opts, Object.fromEntries(queues.map((q) => [pausedFlag(q), '1'])), null));
}
