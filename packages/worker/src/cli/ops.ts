import { Command, Option } from '@commander-js/extra-typings';
import { nonNegativeInt, queueList } from './options.js';
import { CeleriacError, createApp, ErrorCodes, redactUrl, type CeleriacApp } from '@celeriac/core/spi';
import { CliError, loadApp } from './load-app.js';

/**
 * Exit codes of the operator commands, stable for scripts:
 * 0 done; 1 the answer is "no" (no worker replied, the task failed, no such id);
 * 2 usage or configuration error; 3 the broker is unreachable; 4 the task is not finished yet.
 */
export const EXIT = { OK: 0, NEGATIVE: 1, USAGE: 2, BROKER_DOWN: 3, NOT_READY: 4 } as const;

/** Options every operator command takes (each also from an env var). */
export const appOption = () => new Option('-A, --app <module>', 'module exporting the app (for its broker, routes and queues)').env('CELERIAC_APP');
export const brokerOption = () => new Option('-b, --broker <url>', 'broker URL when no -A is given').env('CELERIAC_BROKER_URL');
export const jsonOption = () => new Option('--json', 'machine-readable output (one JSON document)').env('CELERIAC_JSON');

/** An operator command with the options every one of them takes: `-A`, `-b`, `--json`. */
export function opsCommand(name: string, description: string) {
  return new Command(name).description(description).addOption(appOption()).addOption(brokerOption()).addOption(jsonOption());
}

/** Which workers a broadcast is for, and how long their replies are collected. */
export const destinationOption = () => new Option('-d, --destination <nodes>', 'comma-separated node names').env('CELERIAC_DESTINATION').argParser(queueList);
export const replyTimeoutOption = () =>
  new Option('-t, --timeout <ms>', 'how long to wait for replies').env('CELERIAC_TIMEOUT').argParser(nonNegativeInt).default(1000);

export interface OpsOptions {
  readonly app?: string | undefined;
  readonly broker?: string | undefined;
}

/** The app an operator command talks through: the `-A` module's, or a bare one on `--broker`. */
export async function opsApp(opts: OpsOptions): Promise<CeleriacApp> {
  // The broker's own warnings (no persistence, eviction) are for workers' logs, not an operator's screen.
  for (const listener of process.listeners('warning')) process.off('warning', listener);
  process.on('warning', (w) => {
    if (w.name !== 'CeleriacWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
  });
  if (opts.app) return (await loadApp(opts.app)).app;
  return createApp({ name: 'celeriac-cli', ...(opts.broker ? { broker: opts.broker } : {}) });
}

const BROKER_DOWN_CODES = new Set(['BROKER_UNAVAILABLE', 'BROKER_BLOCKED', 'TRANSPORT_CLOSED', 'TIMEOUT']);

/**
 * Run an operator command's body with its app: a broker that cannot be
 * reached becomes one line naming it (password redacted) and exit code 3;
 * the app is closed either way.
 */
export async function withApp<T>(opts: OpsOptions, body: (app: CeleriacApp) => Promise<T>): Promise<T> {
  const app = await opsApp(opts);
  try {
    try {
      await app.transport();
    } catch (err) {
      throw brokerDown(app, err);
    }
    return await body(app);
  } catch (err) {
    if (err instanceof CeleriacError && BROKER_DOWN_CODES.has(err.code)) throw brokerDown(app, err);
    throw err;
  } finally {
    await Promise.race([app.close().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}

function brokerDown(app: CeleriacApp, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new CliError(`cannot reach the broker at ${redactUrl(app.config.broker.redacted)}: ${why}`, EXIT.BROKER_DOWN, ErrorCodes.BROKER_UNAVAILABLE, { cause: err });
}

/** The queues the app knows: its default queue, its routes' queues and its declarations. */
export function appQueues(app: CeleriacApp): string[] {
  const routes = Object.values(app.config.routes).map((r) => r.queue).filter((q): q is string => typeof q === 'string');
  return [...new Set([app.config.defaultQueue, ...routes, ...Object.keys(app.config.queues)])];
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns; the header row is the first. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** A horizontal bar for `value` out of `max`, `width` cells wide. */
export function bar(value: number, max: number, width = 30): string {
  const cells = max > 0 ? Math.round((value / max) * width) : 0;
  return `${'█'.repeat(cells)}${'·'.repeat(width - cells)}`;
}

/** Ask a yes/no question on the terminal; without one, the answer is no (use --yes in scripts). */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError(`${question} — refusing without --yes (stdin is not a terminal)`, EXIT.USAGE);
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** Parse a JSON option, naming the option when it is not valid. */
export function jsonArg<T>(name: string, text: string, check: (v: unknown) => v is T, expected: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${name}: not valid JSON (${(err as Error).message})`, EXIT.USAGE, ErrorCodes.ARGUMENT_INVALID, { cause: err });
  }
  if (!check(value)) throw new CliError(`${name}: expected ${expected}`, EXIT.USAGE);
  return value;
}
