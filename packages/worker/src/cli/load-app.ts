import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CeleriacError, ErrorCodes, isCeleriacError, type CeleriacApp, type ErrorCode } from '@celeriac/core/spi';
import { reapplyYoungGenerationCap } from '../young-generation.js';

/**
 * A clear, one-line CLI failure: printed without a stack trace, the process exits with `exitCode`
 * (2, a usage error, unless given). A {@link CeleriacError} like every other: `code` says what went
 * wrong (`ARGUMENT_INVALID` for a usage error unless given), the underlying error is the `cause`.
 */
export class CliError extends CeleriacError {
  constructor(
    message: string,
    readonly exitCode = 2,
    code: ErrorCode = ErrorCodes.ARGUMENT_INVALID,
    options?: ErrorOptions,
  ) {
    super(code, message, { exitCode }, options);
  }
}

const loadFailed = (message: string, options?: ErrorOptions): CliError => new CliError(message, 2, ErrorCodes.APP_LOAD_FAILED, options);

/** Duck-typed so an app from another copy of @celeriac/core is still recognised. */
function isApp(value: unknown): value is CeleriacApp {
  const v = value as Partial<CeleriacApp> | null;
  return !!v && typeof v === 'object' && typeof v.sendTask === 'function' && typeof v.registry === 'object' && !!v.config;
}

let tsxRegistered = false;

/**
 * Register tsx's hooks for both module systems, once. Both are needed: in a CommonJS project
 * (npm's default, no `"type": "module"`) tsx compiles `tasks.ts` as CommonJS, which then
 * `require()`s `@celeriac/core`; with only the ESM hooks, Node reads the `.ts` file itself, finds
 * `import` syntax and tries to `require()` it as an ES module while this process is importing it
 * (`Cannot require() ES Module … in a cycle`).
 */
async function registerTsx(spec: string): Promise<void> {
  if (tsxRegistered) return;
  let esm: typeof import('tsx/esm/api');
  let cjs: typeof import('tsx/cjs/api');
  try {
    [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  } catch (err) {
    throw loadFailed(`-A ${spec}: loading a TypeScript module needs tsx: install it (npm install --save-dev tsx) or point -A at compiled JavaScript`, {
      cause: err,
    });
  }
  cjs.register();
  esm.register();
  // Its loader thread reset V8's flags: the worker's young-generation cap applies again.
  reapplyYoungGenerationCap();
  tsxRegistered = true;
}

/** What to do about a module-system error Node gave while loading the app module, when there is a clear fix. */
function hintFor(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_REQUIRE_ESM':
      return ` (this Node.js ${process.version} cannot require() an ES module: use Node.js 20.19 or newer, or make the module an ES module: .mjs, or "type": "module" in package.json)`;
    case 'ERR_REQUIRE_ASYNC_MODULE':
      return ' (a CommonJS module require()s an ES module that uses top-level await: remove the top-level await, or load that module with import() / make the requiring module an ES module)';
    case 'ERR_REQUIRE_CYCLE_MODULE':
      return ' (a CommonJS module and an ES module require() and import each other: make the app module one kind throughout, e.g. "type": "module" in package.json or .mjs/.mts)';
    default:
      return '';
  }
}

/**
 * The app a module exports: `exportName` when given; else the `app` export, the default export,
 * or the only app among the exports. A CommonJS module's `module.exports` is its default export,
 * so `module.exports = app` and `module.exports = { app }` are found too.
 */
function findApp(mod: Record<string, unknown>, spec: string, exportName: string | undefined): CeleriacApp {
  const def = mod.default;
  const fromDefault = def !== null && typeof def === 'object' && !isApp(def) ? (def as Record<string, unknown>) : {};
  if (exportName) {
    const value = mod[exportName] ?? fromDefault[exportName];
    if (!isApp(value)) throw loadFailed(`-A ${spec}: export ${JSON.stringify(exportName)} is not a celeriac app`);
    return value;
  }
  const candidates = [mod.app, fromDefault.app, def, ...Object.values(mod), ...Object.values(fromDefault)].filter(isApp);
  const app = candidates[0];
  if (!app) {
    throw loadFailed(`-A ${spec}: the module exports no celeriac app (ESM: export const app = createApp(...); CommonJS: module.exports = { app })`);
  }
  return app;
}

/**
 * Load the module named by `-A` and find its app (`findApp`). ES modules and CommonJS
 * load alike (`.js`, `.mjs`, `.cjs`); `.ts`/`.mts`/`.cts` load through tsx (registered once, so the
 * module shares this process's @celeriac/core), as ESM or CommonJS as the project's package.json says.
 */
export async function loadApp(spec: string, cwd = process.cwd()): Promise<{ app: CeleriacApp; path: string }> {
  const at = spec.lastIndexOf(':');
  const [file, exportName] = at > 1 ? [spec.slice(0, at), spec.slice(at + 1) || undefined] : [spec, undefined];
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  if (!existsSync(path)) throw loadFailed(`-A ${spec}: no such file ${path}`);
  if (/\.(c|m)?tsx?$/.test(path)) await registerTsx(spec);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    // A configuration error (bad URL, unknown option) keeps its name and code, from any copy of @celeriac/core.
    if (isCeleriacError(err)) throw err;
    throw loadFailed(`-A ${spec}: the module failed to load: ${err instanceof Error ? err.message : String(err)}${hintFor(err)}`, { cause: err });
  }
  return { app: findApp(mod, spec, exportName), path };
}
