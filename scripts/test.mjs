#!/usr/bin/env node
// `pnpm test`: the whole suite, from a clean clone. Installs the system packages the
// tests need when they are missing (as root, from Debian; otherwise prints the exact
// command), builds, checks the dependency direction and lint, then runs every vitest
// project (unit, types, integration) and prints a plain "N passed, M failed" line.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * System packages the test suite runs against, with the command that proves each is present.
 * Tests start their own servers from these binaries; they never skip when one is missing.
 */
const SYSTEM_DEPS = [
  { pkg: 'redis-server', check: ['redis-server', '--version'] },
  { pkg: 'rabbitmq-server', check: ['sh', '-c', 'command -v rabbitmq-server && command -v rabbitmqctl'] },
  { pkg: 'python3-celery', check: ['/usr/bin/python3', '-c', 'import celery'] },
  { pkg: 'python3-redis', check: ['/usr/bin/python3', '-c', 'import redis'] },
  { pkg: 'python3-amqp', check: ['/usr/bin/python3', '-c', 'import amqp'] },
  // The dashboard's browser tests drive it through playwright-core. Debian's wrapper script may print a
  // harmless shell warning ("[: ...: unexpected operator") before the version: the exit code is the check.
  { pkg: 'chromium', check: ['/usr/bin/chromium', '--version'] },
];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`\n${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

function ensureSystemDeps() {
  const missing = SYSTEM_DEPS.filter((d) => spawnSync(d.check[0], d.check.slice(1), { stdio: 'ignore' }).status !== 0);
  if (missing.length === 0) return;
  const pkgs = missing.map((d) => d.pkg);
  const cmd = `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`The tests need Debian packages that are not installed: ${pkgs.join(', ')}.\nRun as root:\n  ${cmd}\nthen run the tests again.`);
    process.exit(1);
  }
  console.log(`Installing test dependencies: ${pkgs.join(', ')}`);
  run('sh', ['-c', cmd], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

ensureSystemDeps();
run('pnpm', ['exec', 'tsc', '-b']);
run('node', ['scripts/check-deps.mjs']);
run('pnpm', ['exec', 'eslint', '.']);
run('pnpm', ['exec', 'tsc', '-p', 'test/tsconfig.json']);

const out = mkdtempSync(join(tmpdir(), 'celeriac-vitest-'));
const report = join(out, 'report.json');
const vitest = spawnSync('pnpm', ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
}
rmSync(out, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(vitest.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
