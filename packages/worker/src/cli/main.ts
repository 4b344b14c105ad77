import { Command, CommanderError } from '@commander-js/extra-typings';
import { CeleriacError } from '@celeriac/core/spi';
import { CliError } from './load-app.js';
import { workerCommand } from './worker-command.js';
import { beatCommand } from './beat-command.js';
import { controlCommand, inspectCommand } from './inspect-command.js';
import { pauseCommand, resumeCommand, suspendCommand } from './switch-commands.js';
import { eventsCommand } from './events-command.js';
import { statusCommand } from './status-command.js';
import { failedCommand, purgeCommand } from './queue-commands.js';
import { callCommand, resultCommand } from './task-commands.js';
import { initCommand } from './init-command.js';
import { dashboardCommand } from './dashboard-command.js';

/**
 * A promise the library left unobserved, or an exception nothing caught, is a bug: say so in one
 * marked line with its stack (tests fail on it), then exit as Node would — a worker's unacked work
 * returns to its queue.
 */
function fatal(kind: string) {
  return (err: unknown): void => {
    process.stderr.write(`celeriac: ${kind} (a bug; please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(70);
  };
}
process.on('unhandledRejection', fatal('unhandled rejection'));
process.on('uncaughtException', fatal('uncaught exception'));

const program = new Command('celeriac')
  .description('celeriac: distributed tasks for TypeScript, speaking Celery protocol v2')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .addCommand(workerCommand())
  .addCommand(beatCommand())
  .addCommand(inspectCommand())
  .addCommand(controlCommand())
  .addCommand(eventsCommand())
  .addCommand(statusCommand())
  .addCommand(purgeCommand())
  .addCommand(failedCommand())
  .addCommand(suspendCommand())
  .addCommand(resumeCommand())
  .addCommand(pauseCommand())
  .addCommand(resultCommand())
  .addCommand(callCommand())
  .addCommand(initCommand())
  .addCommand(dashboardCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof CliError) {
    process.stderr.write(`celeriac: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  if (err instanceof CeleriacError) {
    process.stderr.write(`celeriac: ${err.code}: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
