import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { TaskLogger } from '@celeriac/core/spi';

export type { Logger };

/** The worker's pino logger. `CELERIAC_LOG_PRETTY` is left to pino-pretty users via transports. */
export function createLogger(level: LevelWithSilent = 'info', name = 'celeriac'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

/** A task's logger: a pino child whose every line carries the task id and name. */
export function taskLogger(parent: Logger, taskId: string, taskName: string, record?: (level: string, msg: string) => void): TaskLogger {
  const log = parent.child({ taskId, task: taskName });
  // `record` also keeps the line for the task's final event, so the dashboard shows info, warn and error
  // lines even from a worker whose own log is quieter; debug lines only when the worker logs them too.
  const line = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, data?: Record<string, unknown>) => {
    log[level](data ?? {}, msg);
    if (record && (level !== 'debug' || log.isLevelEnabled('debug'))) record(level, data && Object.keys(data).length ? `${msg} ${safeJson(data)}` : msg);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

function safeJson(data: Record<string, unknown>): string {
  try {
    return JSON.stringify(data);
  } catch {
    return '[unserialisable data]';
  }
}
