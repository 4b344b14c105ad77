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
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Effect);
}
