import { TaskError, CeleriacError, ErrorCodes, type ErrorCode } from '../errors.js';
import { exceptionSchema, type EncodedException } from './schema.js';

/**
 * JS errors map onto Python builtins where the meaning is the same, so a Python
 * client sees a real `TypeError`; anything else keeps its JS name under the
 * `celeriac` module (Python's Celery then makes a stand-in class by that name).
 */
const TO_PYTHON: Readonly<Record<string, string>> = { Error: 'Exception', TypeError: 'TypeError', RangeError: 'ValueError' };

/** Longest error message or traceback stored; a 5 MB message must not become a 5 MB result. */
export const MAX_ERROR_TEXT = 64 * 1024;

/** Cut text to `max` characters, saying how much was cut. */
export function truncate(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [truncated ${text.length - max} characters]`;
}

/** Encode a thrown value as Celery's `{exc_type, exc_message, exc_module}`, with messages truncated. */
export function encodeException(err: unknown): EncodedException {
  const exc = encodeUntruncated(err);
  return { ...exc, exc_message: exc.exc_message.map((m) => (typeof m === 'string' ? truncate(m) : m)) };
}

function encodeUntruncated(err: unknown): EncodedException {
  if (err instanceof TaskError) {
    return { exc_type: err.excType, exc_message: [...err.excArgs], exc_module: err.excModule, exc_code: err.code };
  }
  if (err instanceof CeleriacError) {
    // `exc_code` rides beside Celery's three keys (Python ignores extra keys) so celeriac clients keep the stable code.
    return { exc_type: err.name, exc_message: [err.message], exc_module: 'celeriac', exc_code: err.code };
  }
  if (err instanceof Error) {
    const py = TO_PYTHON[err.name];
    return py
      ? { exc_type: py, exc_message: [err.message], exc_module: 'builtins' }
      : { exc_type: err.name || 'Error', exc_message: [err.message], exc_module: 'celeriac' };
  }
  return { exc_type: 'Exception', exc_message: [safeString(err)], exc_module: 'builtins' };
}

/** A traceback text for a thrown value (the JS stack when there is one). */
export function tracebackOf(err: unknown): string | null {
  if (err instanceof TaskError) return err.remoteTraceback;
  return err instanceof Error && err.stack ? truncate(err.stack) : null;
}

/** A readable string for any value, even one JSON cannot hold (BigInt, Symbol, circular objects). */
export function safeString(value: unknown): string {
  if (typeof value === 'string') return truncate(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol' || typeof value === 'function') return value.toString();
  try {
    return truncate(JSON.stringify(value) ?? String(value));
  } catch {
    return truncate(Object.prototype.toString.call(value));
  }
}

const CODE_BY_TYPE: Readonly<Record<string, ErrorCode>> = {
  TaskRevokedError: ErrorCodes.TASK_REVOKED,
  TimeLimitExceeded: ErrorCodes.TIME_LIMIT,
  SoftTimeLimitExceeded: ErrorCodes.SOFT_TIME_LIMIT,
  WorkerLostError: ErrorCodes.WORKER_LOST,
  ChordError: ErrorCodes.CHORD_ERROR,
  ValidationError: ErrorCodes.TASK_ARGS_INVALID,
  UnknownTaskError: ErrorCodes.TASK_UNKNOWN,
  NotRegistered: ErrorCodes.TASK_UNKNOWN,
};

/** Turn a stored exception record back into a {@link TaskError} — as data, never by evaluating its type. */
export function decodeException(taskId: string, value: unknown, traceback: string | null): TaskError {
  const parsed = exceptionSchema.safeParse(value);
  if (!parsed.success) {
    return new TaskError({ taskId, excType: 'Exception', excModule: null, excArgs: [JSON.stringify(value)], traceback });
  }
  const { exc_type, exc_module, exc_message, exc_code } = parsed.data;
  const known = Object.values(ErrorCodes) as string[];
  const code = typeof exc_code === 'string' && known.includes(exc_code) ? (exc_code as ErrorCode) : CODE_BY_TYPE[exc_type];
  return new TaskError({
    taskId,
    excType: exc_type,
    excModule: exc_module,
    excArgs: exc_message,
    traceback,
    ...(code ? { code } : {}),
  });
}
