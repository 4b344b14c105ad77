/**
 * CPU-bound tasks, for the process pool:
 *
 *   celeriac worker -A dist/tasks.js --pool process -c 2
 *
 * Each task runs in a child process that loads this module, so a long computation blocks that child only — never
 * the worker's event loop, its heartbeats or its lease renewals — and two of them run on two cores at once. A
 * hard `timeLimit` is enforced by killing the child (the async pool refuses to start with one: it could not
 * enforce it); the pool starts a fresh child and goes on.
 *
 * CELERIAC_BROKER_URL  default: the embedded broker, sqlite://./.celeriac/celeriac.db (no server)
 */
import { createHash } from 'node:crypto';
import { createApp } from '@celeriac/core';

export const app = createApp({ name: 'process-pool-example' });

/** Count the primes below `limit` by trial division: honest CPU work, no I/O, no await. */
export const countPrimes = app.task({ name: 'cpu.count_primes', timeLimit: 30_000 }, (limit: number) => {
  let primes = 0;
  for (let n = 2; n < limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) primes++;
  }
  return { limit, primes, pid: process.pid };
});

/** SHA-256 of `seed`, then of that digest, `rounds` times (a key-stretching loop). */
export const hashChain = app.task({ name: 'cpu.hash_chain', timeLimit: 30_000 }, (seed: string, rounds: number) => {
  let digest = Buffer.from(seed);
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
  return { rounds, hex: digest.toString('hex'), pid: process.pid };
});

/**
 * A runaway: looks for a number whose Collatz sequence never reaches 1. None is known, so it never returns,
 * and it never awaits, so nothing inside the process can interrupt it: not an AbortSignal, not a soft limit.
 * The hard limit of 1 s is what stops it: the worker kills the child and stores FAILURE (TimeLimitExceeded).
 */
export const collatzCounterexample = app.task({ name: 'cpu.collatz_counterexample', timeLimit: 1_000 }, (from: number) => {
  for (let n = from; ; n++) {
    let x = n;
    let steps = 0;
    while (x !== 1 && steps < 10_000) {
      x = x % 2 === 0 ? x / 2 : 3 * x + 1;
      steps++;
    }
    if (x !== 1) return n;
  }
});
