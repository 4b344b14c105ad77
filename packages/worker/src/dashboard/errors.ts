import { CeleriacError, ErrorCodes, type ErrorCode } from '@celeriac/core/spi';

/** HTTP status of each dashboard error code; any other celeriac error is a 500 unless its code says the broker is down (503). */
export const HTTP_STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  QUERY_INVALID: 400,
  ARGUMENT_INVALID: 400,
  AUTH_REQUIRED: 401,
  TASK_UNKNOWN: 404,
  DEAD_LETTER_UNKNOWN: 404,
  BEAT_ENTRY_UNKNOWN: 404,
  WORKER_NO_REPLY: 504,
  BROKER_UNAVAILABLE: 503,
  BROKER_BLOCKED: 503,
  TIMEOUT: 503,
};

/**
 * An error the dashboard answers with: a stable code (→ HTTP status through
 * `HTTP_STATUS`), a message a person can act on, and `details` safe to show
 * (never a URL with a password).
 */
export class DashboardError extends CeleriacError {
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(code, message, details, options);
  }

  /** A query parameter the API cannot use: `QUERY_INVALID` naming it. */
  static query(param: string, why: string): DashboardError {
    return new DashboardError(ErrorCodes.QUERY_INVALID, `${param}: ${why}`, { param });
  }
}
