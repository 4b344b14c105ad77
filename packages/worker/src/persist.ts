import { CeleriacError, ErrorCodes } from '@celeriac/core/spi';
import type { Logger } from './logger.js';

/**
 * Errors that retrying cannot fix: the input or the setup is wrong, or the
 * delivery was handed on. Everything else — a broker or backend that is away,
 * restarting, paused or timing out — is worth another try.
 */
const PERMANENT = new Set<string>([
  ErrorCodes.CONFIG_INVALID, ErrorCodes.URL_INVALID, ErrorCodes.CAPABILITY_MISSING, ErrorCodes.TASK_UNKNOWN,
  ErrorCodes.TASK_DUPLICATE, ErrorCodes.TASK_ARGS_INVALID, ErrorCodes.TASK_RESULT_INVALID, ErrorCodes.MESSAGE_MALFORMED,
  ErrorCodes.CONTENT_TYPE_REJECTED, ErrorCodes.MESSAGE_TOO_DEEP, ErrorCodes.RESULT_NOT_SERIALIZABLE,
  ErrorCodes.PAYLOAD_TOO_LARGE, ErrorCodes.UNROUTABLE, ErrorCodes.QUEUE_MISMATCH, ErrorCodes.TRANSPORT_CLOSED,
  ErrorCodes.LEASE_LOST, ErrorCodes.CHORD_ERROR,
]);

/** Redis replies that say "not now" rather than "never" (loading, busy script, failover, out of memory). */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|READONLY|MASTERDOWN|OOM|CLUSTERDOWN|NOREPLICAS)\b/;

/** True for an error a later attempt may not meet (the server came back). */
export function isTransient(err: unknown): boolean {
  if (err instanceof CeleriacError) return !PERMANENT.has(err.code);
  if (!(err instanceof Error) || err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  // A Redis error reply (WRONGTYPE, a script error) is the same next time, unless it is one of the "not now" ones.
  if (err.name === 'ReplyError') return TRANSIENT_REPLY.test(err.message);
  // ioredis says this only of a client that was closed on purpose (one that reconnects says otherwise).
  if (err.message === 'Connection is closed.') return false;
  // Any other client library error (a command timeout, ECONNREFUSED, amqplib "Channel closed"): the server was away.
  return true;
}

/** Raised by {@link persist} when the worker stopped while a step still failed. */
export class PersistHalted extends CeleriacError {
  constructor(readonly what: string, options?: ErrorOptions) {
    super(ErrorCodes.WORKER_STOPPING, `stopped retrying: ${what}`, { what }, options);
  }
}

export interface PersistOptions {
  readonly log: Logger;
  /** Aborted when the worker goes cold: the step is left undone (its delivery returns by the broker's rules). */
  readonly halt: AbortSignal;
  /** What the step is, for the log. */
  readonly what: string;
  /** Log fields (task id, name). */
  readonly fields?: Record<string, unknown>;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2000;
/** A step still failing is reported again this often, not on every try. */
const REPORT_EVERY_MS = 10_000;

/**
 * Run a step that records a task's outcome (store a result, send a follow-up,
 * ack) until it is done. A broker or backend that is away for a while — a
 * 10 s restart, a 40 s pause — must neither turn a finished task into a re-run
 * nor leave its slot held for ever: the step is tried again with a doubling
 * pause (at most 2 s) for as long as the outage lasts, while the delivery stays
 * ours (its lease is renewed meanwhile). Permanent errors (and a lost lease)
 * are thrown at once; a worker going cold ends the retries with
 * {@link PersistHalted}.
 */
export function persist<T>(step: () => Promise<T>, options: PersistOptions): Promise<T> {
  // The first try without an async frame of its own: it is the one that almost always works.
  let first: Promise<T>;
  try {
    first = step();
  } catch (err) {
    // A step that throws before its promise (a synchronous driver) is retried the same way.
    return persistAgain(step, options, err);
  }
  return first.catch((err: unknown) => persistAgain(step, options, err));
}

async function persistAgain<T>(step: () => Promise<T>, options: PersistOptions, first: unknown): Promise<T> {
  const { log, halt, what, fields } = options;
  const since = Date.now();
  let err = first;
  let reportedAt = 0;
  for (let delay = FIRST_DELAY_MS; ; delay = Math.min(delay * 2, MAX_DELAY_MS)) {
    if (!isTransient(err)) throw err;
    if (Date.now() - reportedAt >= REPORT_EVERY_MS) {
      reportedAt = Date.now();
      log.warn({ ...fields, err, failingForMs: reportedAt - since }, `${what} failed; retrying until the broker or backend answers`);
    }
    if (halt.aborted) throw new PersistHalted(what, { cause: err });
    await pause(delay, halt);
    if (halt.aborted) throw new PersistHalted(what, { cause: err });
    try {
      const value = await step();
      log.info({ ...fields, failedForMs: Date.now() - since }, `${what} done after retrying`);
      return value;
    } catch (next) {
      err = next;
    }
  }
}

/** Sleep `ms`, or less when `halt` fires (resolves either way). */
function pause(ms: number, halt: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      halt.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    halt.addEventListener('abort', done, { once: true });
  });
}
