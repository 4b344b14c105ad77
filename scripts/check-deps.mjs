#!/usr/bin/env node
// Enforces the dependency direction: worker → core and beat → core, never the reverse;
// beat does not reach into the worker. Checks both package.json and every import in src/.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const forbidden = {
  core: ['@celeriac/worker', '@celeriac/beat'],
  beat: ['@celeriac/worker'],
  worker: [],
};
const problems = [];
for (const [pkg, banned] of Object.entries(forbidden)) {
  const dir = join('packages', pkg);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const deps = { ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies };
  for (const name of banned) if (name in deps) problems.push(`${dir}/package.json depends on ${name}`);
  const walk = (d) => {
    for (const entry of readdirSync(d)) {
      const path = join(d, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|mts|js)$/.test(entry)) {
        const text = readFileSync(path, 'utf8');
        for (const name of banned) {
          if (new RegExp(`from\\s+['"]${name}|import\\(\\s*['"]${name}`).test(text)) problems.push(`${path} imports ${name}`);
        }
        if (/from\s+['"]\.\.\/\.\.\/\.\.\/(worker|beat|core)\//.test(text)) problems.push(`${path} reaches into another package by relative path`);
      }
    }
  };
  walk(join(dir, 'src'));
}
if (problems.length) {
  console.error(`Dependency direction violated (worker → core, beat → core, never the reverse):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('dependency direction ok: core imports neither worker nor beat; beat does not import worker');
