import ts from 'typescript';
import { defineConfig, type Plugin } from 'vitest/config';

/**
 * Vite's own transform does not lower TC39 standard decorators (Node 20 cannot
 * run them natively), so test files that use `@task()` go through TypeScript's
 * compiler first — the same compiler users build with.
 */
function tc39Decorators(): Plugin {
  return {
    name: 'celeriac:tc39-decorators',
    enforce: 'pre',
    transform(code, id) {
      if (!id.endsWith('.ts') || !/^\s*@\w+\(/m.test(code)) return null;
      const out = ts.transpileModule(code, {
        fileName: id,
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: true, verbatimModuleSyntax: false },
      });
      return { code: out.outputText, map: out.sourceMapText ? (JSON.parse(out.sourceMapText) as object) : null };
    },
  };
}

// Packages are imported as users import them (built `dist`), so `pnpm test` builds first.
export default defineConfig({
  plugins: [tc39Decorators()],
  test: {
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'types',
          include: [],
          typecheck: { enabled: true, only: true, include: ['test/types/**/*.test-d.ts'], tsconfig: 'test/tsconfig.json' },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: ['test/integration/global-setup.ts'],
          // Files spawn real worker processes and servers: one file at a time keeps a 2-core machine from skewing them.
          fileParallelism: false,
        },
      },
    ],
  },
});
