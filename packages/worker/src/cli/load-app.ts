import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CeleriacError, ErrorCodes, isCeleriacError, type CeleriacApp, type ErrorCode } from '@celeriac/core';
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
 * Load the module named by `-A` and find its app: the `app` export, else the
 * default export, else the only exported app. `.ts` modules load through tsx
 * (registered once, so the module shares this process's @celeriac/core).
 */
export async function loadApp(spec: string, cwd = process.cwd()): Promise<{ app: CeleriacApp; path: string }> {
  const [file, exportName] = spec.split(':') as [string, string | undefined];
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  if (!existsSync(path)) throw loadFailed(`-A ${spec}: no such file ${path}`);
  if (/\.(c|m)?tsx?$/.test(path) && !tsxRegistered) {
    let api: typeof import('tsx/esm/api');
    try {
      api = await import('tsx/esm/api');
    } catch (err) {
      throw loadFailed(`-A ${spec}: loading a TypeScript module needs tsx; install it (pnpm add -D tsx) or point -A at compiled JavaScript`, { cause: err });
    }
    api.register();
    // Its loader thread reset V8's flags: the worker's young-generation cap applies again.
    reapplyYoungGenerationCap();
    tsxRegistered = true;
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    // A configuration error (bad URL, unknown option) keeps its name and code, from any copy of @celeriac/core.
    if (isCeleriacError(err)) throw err;
    throw loadFailed(`-A ${spec}: the module failed to load: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (exportName) {
    if (!isApp(mod[exportName])) throw loadFailed(`-A ${spec}: export ${JSON.stringify(exportName)} is not a celeriac app`);
    return { app: mod[exportName], path };
  }
  const candidates = [mod.app, mod.default, ...Object.values(mod)].filter(isApp);
  const app = candidates[0];
  if (!app) throw loadFailed(`-A ${spec}: the module exports no celeriac app (export const app = createApp(...))`);
  return { app, path };
}
