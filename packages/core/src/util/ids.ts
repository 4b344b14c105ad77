import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

/** A task id in Celery's format (uuid4 text). */
export const newId = (): string => randomUUID();

/** Celery's `origin` header: `gen<pid>@<host>`. */
export const originName = (): string => `gen${process.pid}@${hostname()}`;
