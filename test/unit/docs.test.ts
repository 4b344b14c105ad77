/**
 * The user guides in docs/ stay true to the code:
 * (a) every relative link points to a file (and heading) that exists;
 * (b) every ```ts block marked `<!-- check -->` (or `<!-- check: name.ts -->`, which names the file so the
 *     guide's other blocks can import it) type-checks against the built packages, as a user's project would;
 * (c) the TypeDoc API reference builds with no warning (`pnpm run docs`, warnings are errors).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCS = join(ROOT, 'docs');
/** Inside the repo, so the blocks resolve `@celeriac/*` and `zod` as a user's project does. Gitignored. */
const CHECK_DIR = join(ROOT, 'test', '.docs-check');

const guides = readdirSync(DOCS)
  .filter((f) => f.endsWith('.md'))
  .sort();
const numbered = guides.filter((f) => /^\d\d-/.test(f));

interface Block {
  readonly guide: string;
  readonly file: string;
  readonly code: string;
  readonly line: number;
}

/** The fenced code blocks of a Markdown text removed (links and headings inside them are not real). */
function stripCode(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes; repeats get -1, -2, ... */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of stripCode(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The blocks marked for checking, with the file name each is written to. */
function checkedBlocks(guide: string): Block[] {
  const lines = readFileSync(join(DOCS, guide), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const mark = /^<!--\s*check(?::\s*([\w.-]+\.ts))?\s*-->\s*$/.exec(lines[i]!);
    if (!mark) continue;
    const open = lines[i + 1] ?? '';
    if (!/^```ts\s*$/.test(open)) throw new Error(`${guide}:${i + 1}: a check marker must be followed by a \`\`\`ts block (found ${JSON.stringify(open)})`);
    const end = lines.findIndex((l, j) => j > i + 1 && /^```\s*$/.test(l));
    if (end === -1) throw new Error(`${guide}:${i + 2}: unterminated code block`);
    blocks.push({ guide, file: mark[1] ?? `snippet-${i + 1}.ts`, code: lines.slice(i + 2, end).join('\n'), line: i + 2 });
    i = end;
  }
  return blocks;
}

function run(cmd: string, args: readonly string[], timeoutMs: number): { status: number | null; output: string; ms: number } {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`, ms: Date.now() - started };
}

afterAll(() => {
  rmSync(CHECK_DIR, { recursive: true, force: true });
});

describe('docs/', () => {
  it('has the numbered guides and an index that links every one of them', () => {
    expect(numbered.length).toBeGreaterThanOrEqual(14);
    const index = readFileSync(join(DOCS, 'README.md'), 'utf8');
    for (const g of numbered) expect(index, `docs/README.md links ${g}`).toContain(`](${g})`);
  });

  it('every relative link points to an existing file and heading', () => {
    const broken: string[] = [];
    for (const guide of guides) {
      const text = readFileSync(join(DOCS, guide), 'utf8');
      for (const m of stripCode(text).matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? join(DOCS, guide) : resolve(DOCS, path);
        if (!existsSync(file)) {
          broken.push(`${guide}: ${target} (no such file)`);
          continue;
        }
        if (anchor && file.endsWith('.md') && !anchorsOf(readFileSync(file, 'utf8')).has(anchor)) {
          broken.push(`${guide}: ${target} (no heading #${anchor} in ${basename(file)})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('the ts blocks marked <!-- check --> type-check against the built packages, at least one per guide', () => {
    rmSync(CHECK_DIR, { recursive: true, force: true });
    const blocks = numbered.flatMap(checkedBlocks);
    for (const g of numbered) expect(blocks.some((b) => b.guide === g), `${g} has a checked block`).toBe(true);
    const where = new Map<string, Block>();
    for (const b of blocks) {
      const path = join(CHECK_DIR, b.guide.replace(/\.md$/, ''), b.file);
      expect(where.has(path), `${b.guide}:${b.line}: ${b.file} is written twice`).toBe(false);
      where.set(path, b);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `${b.code}\n`);
    }
    writeFileSync(
      join(CHECK_DIR, 'tsconfig.json'),
      JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true }, include: ['./**/*.ts'] }, null, 2),
    );
    const r = run('pnpm', ['exec', 'tsc', '--noEmit', '-p', join(CHECK_DIR, 'tsconfig.json')], 240_000);
    // Name each error by the guide and line it comes from, not the temp file.
    const report = r.output.replace(/test\/\.docs-check\/([\w-]+)\/([\w.-]+)\((\d+),(\d+)\)/g, (all, dir: string, file: string, line: string) => {
      const b = where.get(join(CHECK_DIR, dir, file));
      return b ? `docs/${b.guide}:${b.line + Number(line)} (${file})` : all;
    });
    expect(r.status, report).toBe(0);
  }, 300_000);

  it('the API reference builds with TypeDoc, no warnings (pnpm run docs)', () => {
    const out = mkdtempSync(join(tmpdir(), 'celeriac-typedoc-'));
    try {
      // `pnpm run docs`: a bare `pnpm docs` is pnpm's own command (it opens the package's page on npmjs.com).
      const r = run('pnpm', ['run', 'docs', '--out', out], 300_000);
      const warnings = r.output.split('\n').filter((l) => /\[(warning|error)\]/.test(l));
      expect({ status: r.status, warnings }, `${r.output}\n(took ${r.ms} ms)`).toEqual({ status: 0, warnings: [] });
      expect(existsSync(join(out, 'index.html'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 360_000);
});
