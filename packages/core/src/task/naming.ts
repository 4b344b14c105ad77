import { basename, extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Celery names a task `<module>.<function>`. The JS equivalent is the file
 * that called `app.task()` and the function's name: `tasks.ts` defining
 * `add` gives `tasks.add`. Returns undefined when either part is unknown.
 */
export function deriveTaskName(fnName: string, stack: string | undefined): string | undefined {
  if (!fnName || !stack) return undefined;
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^\s()]+?):\d+:\d+\)?\s*$/.exec(line);
    const file = m?.[1];
    if (!file || file.startsWith('node:') || /[/\\]packages[/\\]core[/\\]|@celeriac[/\\]core/.test(file)) continue;
    const path = file.startsWith('file://') ? fileURLToPath(file) : file;
    const module = basename(path, extname(path));
    return module ? `${module}.${fnName}` : undefined;
  }
  return undefined;
}
