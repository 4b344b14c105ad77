import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The worker's young-generation cap, in a process of its own (it sets a V8 flag for the whole
 * process): under an allocation pattern that makes V8 grow its young generation to the 32 MB
 * maximum, the cap holds it near the cap (at most one doubling over).
 */
const MODULE = join(import.meta.dirname, '../../packages/worker/dist/young-generation.js');

function finalNewSpaceMb(capMb: number): number {
  const script = `
    const { getHeapSpaceStatistics } = await import('node:v8');
    const { capYoungGeneration } = await import(${JSON.stringify(MODULE)});
    if (${capMb} > 0) capYoungGeneration(${capMb});
    const size = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    let keep = [];
    let max = 0;
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < 3000; i++) { keep.push({ i, s: 'x' + i, a: [i] }); if (keep.length > 30000) keep = []; }
      max = Math.max(max, size());
      await new Promise((r) => setTimeout(r, 1));
    }
    console.log(max / 1048576);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim());
}

describe('young-generation cap', () => {
  it('holds V8 young generation near the cap where it would otherwise grow to its maximum', () => {
    const free = finalNewSpaceMb(0);
    const capped = finalNewSpaceMb(4);
    expect(free).toBeGreaterThanOrEqual(16);
    expect(capped).toBeLessThanOrEqual(8);
  });
});
