import type { TestProject } from 'vitest/node';
import { startRedis } from '../servers/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A private redis-server for this run: `redis://127.0.0.1:<port>/0`. */
    redisUrl: string;
  }
}

/** Servers shared by the whole integration run: started once, stopped at the end. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
  };
}
