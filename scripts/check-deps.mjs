#!/usr/bin/env node
// `pnpm check:deps [root]`: the dependency rules of the source tree under `root` (default: this repo).
//
//  1. Direction: worker → core and beat → core, never the reverse; beat does not reach into the
//     worker; no package reaches into another by relative path. Checked in package.json and src/.
//  2. No import cycles among `packages/*/src/**/*.ts`, type-only imports included: every relative
//     `import`, `import type`, `export … from` and `import()` is an edge. Each cycle is printed as a
//     path `a.ts → b.ts → a.ts`.
//  3. Result backends (`packages/core/src/backend/**`) and beat never import the Redis or AMQP
//     transports (`packages/core/src/transport/{redis,amqp}/**`): connection code they share lives in
//     `packages/core/src/drivers/**`.
//
// Exit code 1 when any rule is broken, with every problem listed; 0 otherwise.
import ts from 'typescript';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const rel = (p) => relative(root, p).split(sep).join('/');

/** Package names each package must not depend on. */
const FORBIDDEN = {
  core: ['@celeriac/worker', '@celeriac/beat'],
  beat: ['@celeriac/worker'],
  worker: [],
};

/** Folders (relative to root) whose files must not import from the `banned` folders. */
const LAYERS = [
  {
    from: ['packages/core/src/backend/', 'packages/beat/src/'],
    banned: ['packages/core/src/transport/redis/', 'packages/core/src/transport/amqp/'],
    why: 'backends and beat use packages/core/src/drivers/**, never the Redis or AMQP transport',
  },
];

const packagesDir = join(root, 'packages');
const packages = existsSync(packagesDir) ? readdirSync(packagesDir).filter((p) => statSync(join(packagesDir, p)).isDirectory()).sort() : [];

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(ts|mts)$/.test(entry) && !entry.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The source file a relative specifier names (`./x.js` is `./x.ts`; a folder is its `index.ts`), if it exists. */
function resolveRelative(from, spec) {
  const base = resolve(dirname(from), spec);
  const candidates = [base.replace(/\.(m?)js$/, '.$1ts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => /\.m?ts$/.test(c) && existsSync(c) && statSync(c).isFile());
}

const direction = [];
const layering = [];
/** file → the files it imports (relative imports only, resolved to source files). */
const graph = new Map();

for (const pkg of packages) {
  const dir = join(packagesDir, pkg);
  const banned = FORBIDDEN[pkg] ?? [];
  const manifestPath = join(dir, 'package.json');
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const deps = { ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies };
    for (const name of banned) if (name in deps) direction.push(`${rel(manifestPath)} depends on ${name}`);
  }
  const srcDir = join(dir, 'src');
  for (const file of walk(srcDir)) {
    const text = readFileSync(file, 'utf8');
    // importedFiles covers `import`, `import type`, `export … from`, `import()` and `require()`.
    const { importedFiles } = ts.preProcessFile(text, true, true);
    const edges = [];
    for (const { fileName: spec } of importedFiles) {
      for (const name of banned) {
        if (spec === name || spec.startsWith(`${name}/`)) direction.push(`${rel(file)} imports ${name}`);
      }
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(file, spec);
      const targetAbs = target ?? resolve(dirname(file), spec);
      if (!targetAbs.startsWith(dir + sep)) direction.push(`${rel(file)} reaches into another package by relative path (${spec})`);
      const from = rel(file);
      const to = rel(targetAbs);
      for (const layer of LAYERS) {
        if (layer.from.some((f) => from.startsWith(f)) && layer.banned.some((b) => to.startsWith(b))) {
          layering.push(`${from} imports ${to} (${layer.why})`);
        }
      }
      if (target && !edges.includes(target)) edges.push(target);
    }
    graph.set(file, edges);
  }
}

/** Strongly connected components of more than one file (or a file importing itself), by Tarjan's algorithm. */
function stronglyConnected(g) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (g.get(v) ?? []).includes(v)) out.push(component);
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The shortest path from `start` back to `start` inside one component, by breadth-first search. */
function cycleThrough(g, start, members) {
  const prev = new Map();
  const queue = [start];
  const seen = new Set();
  while (queue.length) {
    const v = queue.shift();
    for (const w of g.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)) path.splice(1, 0, u);
        path.push(start);
        return path;
      }
      if (!seen.has(w)) {
        seen.add(w);
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/**
 * One printed cycle per component: the shortest cycle through its first file, then, for files of a
 * bigger component not on any printed cycle yet, the shortest cycle through each, until all are shown.
 */
const cycles = [];
for (const component of stronglyConnected(graph)) {
  const members = new Set(component);
  const shown = new Set();
  for (const file of [...component].sort()) {
    if (shown.has(file)) continue;
    const path = cycleThrough(graph, file, members);
    for (const p of path) shown.add(p);
    cycles.push(path.map(rel).join(' → '));
  }
}

let failed = false;
if (direction.length) {
  failed = true;
  console.error(`Dependency direction violated (worker → core, beat → core, never the reverse):\n  ${direction.join('\n  ')}`);
}
if (cycles.length) {
  failed = true;
  console.error(`Import cycles (type-only imports count): ${cycles.length}\n  ${cycles.join('\n  ')}`);
}
if (layering.length) {
  failed = true;
  console.error(`Layering violated:\n  ${layering.join('\n  ')}`);
}
if (failed) process.exit(1);
console.log(
  `dependencies ok: core imports neither worker nor beat; beat does not import worker; no import cycles among ${graph.size} files; ` +
    'backends and beat do not import the Redis or AMQP transport',
);
