#!/usr/bin/env node
// `pnpm soak [--minutes N]`: the chaos soak (catalogue T22, RabbitMQ part) for N minutes (default 10):
// builds, then runs test/integration/amqp-soak.test.ts with CELERIAC_SOAK_MINUTES=N. It prints the
// history checker's counts (lost must be 0) and each worker's RSS and open file descriptors.
// `pnpm test` runs the same file for 1 minute.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const at = args.indexOf('--minutes');
const minutes = at >= 0 ? Number(args[at + 1]) : 10;
if (!Number.isFinite(minutes) || minutes <= 0) {
  console.error('usage: pnpm soak [--minutes N]   (N > 0, default 10)');
  process.exit(2);
}

function run(cmd, argv, env = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status || 1);
}

run('pnpm', ['exec', 'tsc', '-b']);
run('pnpm', ['exec', 'vitest', 'run', '--project', 'integration', 'test/integration/amqp-soak.test.ts'], { CELERIAC_SOAK_MINUTES: String(minutes) });
