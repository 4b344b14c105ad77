import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CeleriacApp } from '@celeriac/core';
import { reapplyYoungGenerationCap } from '../young-generation.js';

/** A clear, one-line CLI failure (printed without a stack trace, exit code 2). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

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
  if (!existsSync(path)) throw new CliError(`-A ${spec}: no such file ${path}`);
  if (/\.(c|m)?tsx?$/.test(path) && !tsxRegistered) {
    let api: typeof import('tsx/esm/api');
    try {
      api = await import('tsx/esm/api');
    } catch {
      throw new CliError(`-A ${spec}: loading a TypeScript module needs tsx; install it (pnpm add -D tsx) or point -A at compiled JavaScript`);
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
    // A configuration error (bad URL, unknown option) keeps its name and code.
    if (err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && err.name.endsWith('Error') && 'details' in err) throw err;
    throw new CliError(`-A ${spec}: the module failed to load: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (exportName) {
    if (!isApp(mod[exportName])) throw new CliError(`-A ${spec}: export ${JSON.stringify(exportName)} is not a celeriac app`);
    return { app: mod[exportName], path };
  }
  const candidates = [mod.app, mod.default, ...Object.values(mod)].filter(isApp);
  const app = candidates[0];
  if (!app) throw new CliError(`-A ${spec}: the module exports no celeriac app (export const app = createApp(...))`);
  return { app, path };
}
