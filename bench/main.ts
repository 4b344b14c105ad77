/**
 * `pnpm bench [redis|amqp|redis-drain|history]`: the same workload through celeriac and its peers on a
 * private broker, in one run, printed as one table. BENCH_N sets the task count
 * (default 10,000), BENCH_RT the round trips (default 500). Numbers move 20–40 %
 * between runs on a 2-core machine: compare the systems within a run, as ratios.
 */
const which = process.argv[2] ?? 'redis';
if (which === 'redis') await (await import('./redis.js')).benchRedis();
else if (which === 'amqp') await (await import('./amqp.js')).benchAmqp();
else if (which === 'redis-drain') await (await import('./redis-drain.js')).benchRedisDrain();
else if (which === 'history') await (await import('./history.js')).benchHistory();
else {
  console.error(`pnpm bench ${which}: unknown benchmark; use "redis", "amqp", "redis-drain" or "history"`);
  process.exit(2);
}
