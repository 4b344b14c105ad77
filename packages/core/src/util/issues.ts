import type { z } from 'zod';

/**
 * A zod error as one line a person reads: `path: message; path: message`.
 * `root` names the whole value when an issue has no path (`(options)`, `args`);
 * `prefix` goes before a path (`arg ` gives `arg 0: expected number`). Unknown
 * keys list what is accepted when `accepted` is given.
 */
export function formatIssues(error: z.ZodError, how: { root?: string; prefix?: string; accepted?: readonly string[] } = {}): string {
  const { root = '(root)', prefix = '', accepted } = how;
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys' && accepted) {
        const keys = issue.keys.map((k) => JSON.stringify(k)).join(', ');
        return `unknown option${issue.keys.length > 1 ? 's' : ''} ${keys} (accepted: ${accepted.join(', ')})`;
      }
      return `${issue.path.length ? `${prefix}${issue.path.join('.')}` : root}: ${issue.message}`;
    })
    .join('; ');
}
