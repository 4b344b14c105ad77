import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** The worker's default cap on V8's young generation (both semi-spaces), in MB. */
export const DEFAULT_YOUNG_GENERATION_MB = 4;

/** How often the cap is checked. */
const CHECK_MS = 20;

const newSpaceBytes = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

/** The cap in force in this process (bytes; 0: none), and the young generation's size when it was last applied. */
let cap = 0;
let appliedAt = 0;

function apply(force: boolean): void {
  const size = newSpaceBytes();
  // Set only when needed: at the cap for the first time, grown all the same, or flags reset.
  if (cap > 0 && size >= cap && (force || size > appliedAt)) {
    setFlagsFromString('--semi-space-growth-factor=1');
    appliedAt = size;
  }
}

/**
 * Keep V8's young generation at about `mb` MB in this process.
 *
 * Why: a worker allocates fast and keeps little (its live heap is ~15 MB), so V8 grows the young
 * generation to its 32 MB maximum and lets promoted garbage pile up in old space between full
 * collections. Held at 4 MB, a Redis no-op drain at c=100 kept its speed on the 2-core machine
 * with 20–35 MB less RSS.
 *
 * How: the maximum is fixed when the process starts (`--max-semi-space-size`, which a user may
 * still pass and which then wins), but V8 reads its growth factor each time it grows the young
 * generation: at the cap, the factor is set to 1. Node applies V8's flags afresh when it starts a
 * thread (tsx's loader does), so {@link reapplyYoungGenerationCap} is called after that, and a
 * check every {@link CHECK_MS} ms catches the rest (it may overshoot by a doubling). Returns a
 * function that stops the checks.
 */
export function capYoungGeneration(mb: number): () => void {
  cap = mb * 1024 * 1024;
  apply(true);
  const timer = setInterval(() => apply(false), CHECK_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    cap = 0;
  };
}

/** A thread started (its V8 flags were applied afresh): set the cap's growth factor again. */
export function reapplyYoungGenerationCap(): void {
  apply(true);
}
