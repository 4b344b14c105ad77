/**
 * Sends a runaway task and CPU-bound work side by side, then shows that the runaway was killed at its hard time
 * limit and that the pool went on serving.
 *
 *   node dist/client.js      (with the worker running; see README.md)
 */
import { TaskError } from '@celeriac/core';
import { collatzCounterexample, countPrimes, hashChain, app } from './tasks.js';

try {
  const started = Date.now();
  // The runaway takes one child; the other child serves the rest meanwhile.
  const runaway = await collatzCounterexample.delay(1);
  const work = await Promise.all([1_000_000, 1_500_000, 2_000_000].map((limit) => countPrimes.delay(limit)));
  const hashed = await hashChain.delay('celeriac', 200_000);

  for (const r of work) {
    const { limit, primes, pid } = await r.get({ timeout: 30_000 });
    console.log(`primes below ${limit}: ${primes} (child pid ${pid})`);
  }
  const h = await hashed.get({ timeout: 30_000 });
  console.log(`sha256 x ${h.rounds} of "celeriac": ${h.hex.slice(0, 16)}… (child pid ${h.pid})`);

  try {
    await runaway.get({ timeout: 30_000 });
    console.log('the runaway returned?!');
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    // The failure crosses processes as data: the type and message the worker stored.
    console.log(`runaway: ${err.excType} (${err.code}, limit ${err.excMessage} s), failed ${Date.now() - started} ms after it was sent`);
  }

  // The killed child was replaced: the pool keeps serving, two at a time.
  const after = await Promise.all([countPrimes.delay(500_000), countPrimes.delay(600_000)]);
  for (const r of after) {
    const { limit, primes, pid } = await r.get({ timeout: 30_000 });
    console.log(`after the kill, primes below ${limit}: ${primes} (child pid ${pid})`);
  }
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await app.close();
}
