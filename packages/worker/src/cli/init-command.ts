import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { ErrorCodes } from '@celeriac/core';
import { CliError } from './load-app.js';

/** `celeriac init` would overwrite files that exist: nothing was written. */
export class ScaffoldConflictError extends CliError {
  constructor(readonly files: readonly string[]) {
    super(
      `celeriac init writes no file that exists, and these do: ${files.join(', ')} (move them away, or init another directory)`,
      2,
      ErrorCodes.FILE_EXISTS,
    );
  }
}

/** This package's manifest: the version the scaffold depends on, and the tsx range it supports. */
function ownManifest(): { version: string; peerDependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
}

export type ModuleKind = 'esm' | 'cjs';

export interface InitOptions {
  /** `esm` (`"type": "module"`) or `cjs`; default: an existing package.json's `type`, else `esm`. */
  readonly module?: ModuleKind;
  /** The app's name; default: package.json's name, else the directory's name. */
  readonly name?: string;
}

export interface InitReport {
  readonly dir: string;
  readonly module: ModuleKind;
  /** Files written, relative to `dir`. */
  readonly created: string[];
  /** Existing files left as they were (package.json: keys added, none replaced). */
  readonly kept: string[];
}

interface PackageJson {
  name?: string;
  type?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  [key: string]: unknown;
}

function tasksSource(name: string): string {
  return `import { createApp } from '@celeriac/core';

// The broker is CELERIAC_BROKER_URL when set (redis://..., amqp://...), else the embedded
// sqlite://./.celeriac/celeriac.db: a file, no server to run.
export const app = createApp({
  name: ${JSON.stringify(name)},
  // Run by \`npm run beat\` (or \`celeriac worker -B\`): tasks.add(1, 2) every 30 seconds.
  beatSchedule: [{ name: 'add-every-30s', task: 'tasks.add', schedule: { every: 30_000 }, args: [1, 2] }],
});

export const add = app.task({ name: 'tasks.add' }, async (x: number, y: number) => x + y);

export const hello = app.task({ name: 'tasks.hello' }, async (who: string) => \`hello, \${who}\`);
`;
}

function clientSource(module: ModuleKind): string {
  const body = `const sum = await add.delay(1, 2).get({ timeout: 10_000 }); // sent, run by a worker, awaited
console.log(\`add(1, 2) = \${sum}\`);
console.log(await hello.delay('world').get({ timeout: 10_000 }));
await app.close();`;
  if (module === 'esm') return `import { add, app, hello } from './tasks.js';\n\n${body}\n`;
  // A CommonJS module has no top-level await.
  const indented = body
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
  return `import { add, app, hello } from './tasks.js';

async function main(): Promise<void> {
${indented}
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
`;
}

const TSCONFIG = `{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "types": ["node"]
  },
  "include": ["src"]
}
`;

function readmeSource(name: string, module: ModuleKind): string {
  return `# ${name}

A [celeriac](https://www.npmjs.com/package/@celeriac/core) project (${module === 'esm' ? 'ES modules' : 'CommonJS'}): tasks in \`src/tasks.ts\`,
a client that calls them in \`src/client.ts\`, on the embedded SQLite broker (\`./.celeriac/\`, no server).

\`\`\`sh
npm install
npm run worker      # terminal 1: a worker running the tasks
npm run client      # terminal 2: sends add(1, 2) and hello('world'), prints the results
npm run beat        # optional: sends tasks.add every 30 s (or: npm run worker -- -B)
npm run typecheck
\`\`\`

Set \`CELERIAC_BROKER_URL=redis://localhost:6379/0\` (or \`amqp://...\`) to use a real broker.
`;
}

/** Write a working celeriac project into `dir` (see {@link InitOptions}); refuses to overwrite anything. */
export function scaffold(dirArg: string, options: InitOptions = {}): InitReport {
  const dir = resolve(dirArg);
  const pkgPath = join(dir, 'package.json');
  const existing = existsSync(pkgPath) ? (JSON.parse(readFileSync(pkgPath, 'utf8')) as PackageJson) : undefined;
  const module: ModuleKind = options.module ?? (existing ? (existing.type === 'module' ? 'esm' : 'cjs') : 'esm');
  if (existing && options.module && (existing.type === 'module') !== (options.module === 'esm')) {
    throw new CliError(
      `--${options.module}: ${pkgPath} says ${existing.type === 'module' ? '"type": "module" (ES modules)' : 'CommonJS (no "type": "module")'}; drop the flag, or change "type" there first`,
    );
  }
  const rawName = options.name ?? existing?.name ?? basename(dir);
  const name = rawName.replace(/^@[^/]+\//, '') || 'proj';

  const files: Record<string, string> = {
    'src/tasks.ts': tasksSource(name),
    'src/client.ts': clientSource(module),
  };
  // Kept when they exist (an existing project has its own): never an error, never overwritten.
  const optional: Record<string, string> = {
    'tsconfig.json': TSCONFIG,
    'README.md': readmeSource(name, module),
    '.gitignore': 'node_modules/\n.celeriac/\n',
  };
  const conflicts = Object.keys(files).filter((f) => existsSync(join(dir, f)));
  if (conflicts.length > 0) throw new ScaffoldConflictError(conflicts.map((f) => relative(process.cwd(), join(dir, f)) || f));

  const own = ownManifest();
  const range = `^${own.version}`;
  const pkg: PackageJson = existing ? { ...existing } : { name: rawName.toLowerCase().replace(/[^a-z0-9._~/@-]+/g, '-'), version: '0.1.0', private: true };
  if (module === 'esm') pkg.type = 'module';
  const addMissing = (key: 'scripts' | 'dependencies' | 'devDependencies', entries: Record<string, string>): void => {
    const current = { ...(pkg[key] ?? {}) };
    for (const [k, v] of Object.entries(entries)) if (!(k in current)) current[k] = v;
    pkg[key] = current;
  };
  addMissing('scripts', {
    worker: 'celeriac worker -A ./src/tasks.ts',
    beat: 'celeriac beat -A ./src/tasks.ts',
    client: 'tsx src/client.ts',
    typecheck: 'tsc --noEmit',
  });
  addMissing('dependencies', { '@celeriac/core': range, '@celeriac/worker': range, '@celeriac/beat': range });
  addMissing('devDependencies', { tsx: own.peerDependencies?.tsx ?? '^4.23.0', typescript: '^6.0.0', '@types/node': '^20.19.0' });

  const created: string[] = [];
  const kept: string[] = [];
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
  (existing ? kept : created).push('package.json');
  for (const [file, text] of Object.entries(files)) {
    writeFileSync(join(dir, file), text, { flag: 'wx' });
    created.push(file);
  }
  for (const [file, text] of Object.entries(optional)) {
    if (existsSync(join(dir, file))) {
      kept.push(file);
      continue;
    }
    writeFileSync(join(dir, file), text, { flag: 'wx' });
    created.push(file);
  }
  return { dir, module, created, kept };
}

export function initCommand() {
  return new Command('init')
    .description('scaffold a celeriac project: package.json, tsconfig.json, src/tasks.ts, src/client.ts, README.md (never overwrites a file)')
    .argument('[dir]', 'directory to create the project in', '.')
    .addOption(new Option('--esm', 'an ES-module project ("type": "module"); the default for a new package.json').conflicts('cjs'))
    .addOption(new Option('--cjs', 'a CommonJS project (npm\'s default); the default when an existing package.json has no "type": "module"'))
    .option('--name <name>', "the app's name (default: package.json's name, else the directory's)")
    .action((dir, opts) => {
      const module: ModuleKind | undefined = opts.esm ? 'esm' : opts.cjs ? 'cjs' : undefined;
      const report = scaffold(dir, { ...(module ? { module } : {}), ...(opts.name ? { name: opts.name } : {}) });
      const where = relative(process.cwd(), report.dir) || '.';
      const lines = [
        `celeriac project (${report.module === 'esm' ? 'ES modules' : 'CommonJS'}) in ${where}:`,
        ...report.created.map((f) => `  created ${f}`),
        ...report.kept.map((f) => (f === 'package.json' ? `  updated ${f} (added what was missing: scripts, dependencies)` : `  kept    ${f} (exists)`)),
        '',
        'next:',
        ...(where === '.' ? [] : [`  cd ${where}`]),
        '  npm install',
        '  npm run worker    # in one terminal',
        '  npm run client    # in another',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
