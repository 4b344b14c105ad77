import type { ResolvedConfig } from './config.js';

export interface Route {
  readonly queue?: string | undefined;
  readonly priority?: number | undefined;
  readonly exchange?: string | undefined;
  readonly routingKey?: string | undefined;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Compile `routes` once: an exact name wins over globs; among globs, the first listed wins. */
export function compileRoutes(routes: ResolvedConfig['routes']): (taskName: string) => Route {
  const exact = new Map<string, Route>();
  const globs: [RegExp, Route][] = [];
  for (const [pattern, route] of Object.entries(routes)) {
    if (pattern.includes('*')) globs.push([globToRegExp(pattern), route]);
    else exact.set(pattern, route);
  }
  return (taskName) => exact.get(taskName) ?? globs.find(([re]) => re.test(taskName))?.[1] ?? {};
}
