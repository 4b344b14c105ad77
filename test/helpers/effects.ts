import { existsSync, readFileSync } from 'node:fs';

export interface Effect {
  kind: string;
  pid: number;
  t: number;
  [key: string]: unknown;
}

/** Side effects recorded by fixture tasks (one JSON object per line). */
export function readEffects(file: string): Effect[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  // The last line has no newline yet while a worker is still writing it (or was killed writing it): not a record yet.
  lines.pop();
  return lines.filter(Boolean).map((l) => JSON.parse(l) as Effect);
}
