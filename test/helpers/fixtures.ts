import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The Celery 5.2.6 captures, copied into the repo (test/fixtures/celery-5.2). */
export const FIXTURE_DIR = join(import.meta.dirname, '..', 'fixtures', 'celery-5.2');

export interface Fixture {
  readonly file: string;
  readonly python?: string;
  readonly raw: unknown;
  readonly decoded: unknown;
  readonly [key: string]: unknown;
}

export function loadFixture(rel: string): Fixture {
  return { file: rel, ...(JSON.parse(readFileSync(join(FIXTURE_DIR, rel), "utf8")) as Omit<Fixture, "file">) } as Fixture;
}

export function fixtureFiles(dir: 'redis' | 'amqp' | 'backend'): string[] {
  return readdirSync(join(FIXTURE_DIR, dir))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => `${dir}/${f}`);
}
