import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { TaskLogger } from '@celeriac/core/spi';

export type { Logger };

/** The worker's pino logger. `CELERIAC_LOG_PRETTY` is left to pino-pretty users via transports. */
export function createLogger(level: LevelWithSilent = 'info', name = 'celeriac'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

/** A task's logger: a pino child whose every line carries the task id and name. */
export function taskLogger(parent: Logger, taskId: string, taskName: string): TaskLogger {
  const log = parent.child({ taskId, task: taskName });
  return {
    debug: (msg, data) => log.debug(data ?? {}, msg),
    info: (msg, data) => log.info(data ?? {}, msg),
    warn: (msg, data) => log.warn(data ?? {}, msg),
    error: (msg, data) => log.error(data ?? {}, msg),
  };
}
