// The config resolver is internal; tests reach it through the built package's module path.
export { ConfigError, createApp, ErrorCodes, redactUrl } from '@celeriac/core/spi';
import { createApp, type AppOptions } from '@celeriac/core/spi';

/** Resolve config against an explicit env (what createApp does with process.env). */
export function resolveConfigForTest(options: AppOptions, env: Record<string, string>) {
  const saved = { ...process.env };
  try {
    delete process.env.CELERIAC_BROKER_URL;
    delete process.env.CELERIAC_RESULT_BACKEND;
    Object.assign(process.env, env);
    return createApp(options).config;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}
