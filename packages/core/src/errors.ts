/**
 * The one catalogue of celeriac errors. Every error a user can see is a
 * {@link CeleriacError} with a stable `code`: scripts and dashboards match on
 * the code, never on the message text, which may improve over time.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  URL_INVALID: 'URL_INVALID',
  CAPABILITY_MISSING: 'CAPABILITY_MISSING',
  TASK_UNKNOWN: 'TASK_UNKNOWN',
  TASK_DUPLICATE: 'TASK_DUPLICATE',
  TASK_ARGS_INVALID: 'TASK_ARGS_INVALID',
  TASK_RESULT_INVALID: 'TASK_RESULT_INVALID',
  TASK_FAILED: 'TASK_FAILED',
  MESSAGE_MALFORMED: 'MESSAGE_MALFORMED',
  CONTENT_TYPE_REJECTED: 'CONTENT_TYPE_REJECTED',
  MESSAGE_TOO_DEEP: 'MESSAGE_TOO_DEEP',
  RESULT_NOT_SERIALIZABLE: 'RESULT_NOT_SERIALIZABLE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  TIMEOUT: 'TIMEOUT',
  TRANSPORT_CLOSED: 'TRANSPORT_CLOSED',
  BROKER_UNAVAILABLE: 'BROKER_UNAVAILABLE',
  BROKER_BLOCKED: 'BROKER_BLOCKED',
  UNROUTABLE: 'UNROUTABLE',
  QUEUE_MISMATCH: 'QUEUE_MISMATCH',
  TASK_REVOKED: 'TASK_REVOKED',
  SOFT_TIME_LIMIT: 'SOFT_TIME_LIMIT',
  TIME_LIMIT: 'TIME_LIMIT',
  WORKER_LOST: 'WORKER_LOST',
  WORKER_STOPPING: 'WORKER_STOPPING',
  MAX_RETRIES: 'MAX_RETRIES',
  RETRY: 'RETRY',
  LEASE_LOST: 'LEASE_LOST',
  CHORD_ERROR: 'CHORD_ERROR',
  UNSAFE_REDIS_CONFIG: 'UNSAFE_REDIS_CONFIG',
  /** A function or command was given an argument it cannot use (a chunk size, a rate-limit string, a CLI usage error). */
  ARGUMENT_INVALID: 'ARGUMENT_INVALID',
  /** No beat entry has the given name. */
  BEAT_ENTRY_UNKNOWN: 'BEAT_ENTRY_UNKNOWN',
  /** No dead letter (failed task) has the given id. */
  DEAD_LETTER_UNKNOWN: 'DEAD_LETTER_UNKNOWN',
  /** The app module named by `-A` (or given to a process-pool child) is missing, fails to load or exports no app. */
  APP_LOAD_FAILED: 'APP_LOAD_FAILED',
  /** A process-pool child could not start (its app did not load, or it exited before it was ready). */
  POOL_START_FAILED: 'POOL_START_FAILED',
  /** `celeriac init` would overwrite a file that already exists (it never does: move the file or pick another directory). */
  FILE_EXISTS: 'FILE_EXISTS',
  /** A search or page request the dashboard cannot use (a malformed filter, an unknown sort key): HTTP 400 with the reason. */
  QUERY_INVALID: 'QUERY_INVALID',
  /** The request needs authentication it lacks, or a state-changing request failed its CSRF check: HTTP 401/403. */
  AUTH_REQUIRED: 'AUTH_REQUIRED',
  /** A remote-control command sent to named workers got no answer from them within its timeout. */
  WORKER_NO_REPLY: 'WORKER_NO_REPLY',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Marks a celeriac error; `Symbol.for` so a second copy of the package (two versions in one tree) still knows it. */
const BRAND = Symbol.for('celeriac.error');
/** The class names along an error's prototype chain, for `instanceof` across copies. */
const KINDS = Symbol.for('celeriac.error.kinds');

/**
 * Base class of every error celeriac throws on purpose.
 *
 * `instanceof` works across two copies of the package (an app's and a CLI's
 * `node_modules`): a check reads the brand and the class names the error was
 * built with, not the identity of one copy's class.
 */
export class CeleriacError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  declare readonly [BRAND]: true;
  declare readonly [KINDS]: readonly string[];

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze({ ...details });
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) kinds.push((c as { name: string }).name);
    Object.defineProperty(this, BRAND, { value: true });
    Object.defineProperty(this, KINDS, { value: Object.freeze(kinds) });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || (value as { [BRAND]?: unknown })[BRAND] !== true) return false;
    return ((value as { [KINDS]?: readonly string[] })[KINDS] ?? []).includes(this.name);
  }
}

/** Whether `value` is a celeriac error (from any copy of the package), optionally with this code. */
export function isCeleriacError(value: unknown, code?: ErrorCode): value is CeleriacError {
  return value instanceof CeleriacError && (code === undefined || value.code === code);
}

/** Invalid configuration given to `createApp` (unknown option, wrong type, bad URL). */
export class ConfigError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, code: ErrorCode = ErrorCodes.CONFIG_INVALID, options?: ErrorOptions) {
    super(code, message, details, options);
  }
}

/** A function or command was given an argument it cannot use: `ARGUMENT_INVALID`, the argument named in `details`. */
export class ArgumentError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.ARGUMENT_INVALID, message, details, options);
  }
}

/** The configured transport or backend lacks a capability the configuration needs. */
export class CapabilityError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.CAPABILITY_MISSING, message, details, options);
  }
}

/** A message names a task this process has not registered. */
export class UnknownTaskError extends CeleriacError {
  constructor(readonly taskName: string) {
    super(ErrorCodes.TASK_UNKNOWN, `Received unregistered task of type ${JSON.stringify(taskName)}`, { taskName });
  }
}

/** A beat schedule API call names an entry that does not exist. */
export class UnknownBeatEntryError extends CeleriacError {
  constructor(readonly entryName: string) {
    super(ErrorCodes.BEAT_ENTRY_UNKNOWN, `No beat entry named ${JSON.stringify(entryName)}`, { entryName });
  }
}

/** A message that cannot be decoded as a Celery protocol v2 task message. */
export class MessageError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, code: ErrorCode = ErrorCodes.MESSAGE_MALFORMED, options?: ErrorOptions) {
    super(code, message, details, options);
  }
}

/** Arguments (or a result) that fail a task's zod schema. Never retried. */
export class ValidationError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, code: ErrorCode = ErrorCodes.TASK_ARGS_INVALID, options?: ErrorOptions) {
    super(code, message, details, options);
  }
}

/** An encoded message larger than the configured `maxPayloadBytes`. */
export class PayloadTooLargeError extends CeleriacError {
  constructor(readonly size: number, readonly limit: number, taskName: string) {
    super(
      ErrorCodes.PAYLOAD_TOO_LARGE,
      `Message for task ${JSON.stringify(taskName)} is ${size} bytes, over the ${limit}-byte limit (maxPayloadBytes)`,
      { size, limit, taskName },
    );
  }
}

/** `AsyncResult.get()` (or another wait) ran past its deadline. */
export class TimeoutError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.TIMEOUT, message, details, options);
  }
}

/**
 * A task failed remotely. The remote exception is carried as data — type,
 * module, message and traceback — and never rebuilt by name or evaluated.
 */
export class TaskError extends CeleriacError {
  readonly taskId: string;
  readonly excType: string;
  readonly excModule: string | null;
  readonly excMessage: string;
  readonly excArgs: readonly unknown[];
  readonly remoteTraceback: string | null;

  constructor(init: {
    taskId: string;
    excType: string;
    excModule: string | null;
    excArgs: readonly unknown[];
    traceback: string | null;
    code?: ErrorCode;
  }) {
    const excMessage = init.excArgs.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(', ');
    super(init.code ?? ErrorCodes.TASK_FAILED, `Task ${init.taskId} failed: ${init.excType}: ${excMessage}`, {
      taskId: init.taskId,
      excType: init.excType,
      excModule: init.excModule,
    });
    this.taskId = init.taskId;
    this.excType = init.excType;
    this.excModule = init.excModule;
    this.excMessage = excMessage;
    this.excArgs = Object.freeze([...init.excArgs]);
    this.remoteTraceback = init.traceback;
  }
}

/** Thrown inside a task (via `ctx.signal.reason`) when its soft time limit passes. */
export class SoftTimeLimitExceeded extends CeleriacError {
  constructor(seconds: number) {
    super(ErrorCodes.SOFT_TIME_LIMIT, `SoftTimeLimitExceeded(${seconds})`, { seconds });
  }
}

/**
 * The broker refused or could not take a message or a declaration: unreachable
 * (`BROKER_UNAVAILABLE`), under a resource alarm past the wait deadline
 * (`BROKER_BLOCKED`), no queue bound for it (`UNROUTABLE`), or a queue that
 * exists with other arguments (`QUEUE_MISMATCH`).
 */
export class BrokerError extends CeleriacError {}

/**
 * The broker (or a result backend's server) cannot be reached or stopped
 * answering: the same error on every transport. `url` is the redacted URL,
 * the underlying error is the `cause`.
 */
export class BrokerUnavailableError extends CeleriacError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.BROKER_UNAVAILABLE, message, details, options);
  }
}

/** The transport or backend was closed while an operation needed it. */
export class TransportClosedError extends CeleriacError {
  constructor(what: string, options?: ErrorOptions) {
    super(ErrorCodes.TRANSPORT_CLOSED, `${what} is closed`, {}, options);
  }
}

/**
 * Thrown by `ctx.retry()` to ask the worker for another run later (Celery's
 * `Retry`). Not a failure: the worker stores RETRY and republishes.
 */
export class RetryRequested extends CeleriacError {
  constructor(
    readonly countdown: number | undefined,
    readonly cause_: unknown,
    readonly maxRetries: number | undefined,
  ) {
    super(ErrorCodes.RETRY, `Retry requested${countdown !== undefined ? ` in ${countdown} ms` : ''}`);
  }
}

/**
 * An ack or reject came after this consumer's lease on the message ran out and
 * another consumer may have taken it over: the late outcome is not applied.
 */
export class LeaseLostError extends CeleriacError {
  constructor(what: string) {
    super(ErrorCodes.LEASE_LOST, `${what}: the lease on this message expired and it was handed to another consumer`);
  }
}
