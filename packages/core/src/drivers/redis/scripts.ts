/**
 * Lua shared by every Redis user (transport, result backend, beat), and the one way a script
 * becomes a command of a connection. Scripts that only one of them runs live with it.
 */
import type { Redis } from 'ioredis';

/** kombu's separator inside priority queue names and binding members. */
export const SEP = '\x06\x16';

export const RELEASE_LOCK = `
-- release-lock: delete a lock only if it still holds our token.
-- KEYS[1] lock key; ARGV[1] token. returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** name → [lua, number of keys (undefined: given with each call)]. */
export type ScriptTable = Readonly<Record<string, readonly [lua: string, keys: number | undefined]>>;

/** Define each script of `table` as a command of `redis` (EVALSHA, falling back to EVAL once per connection). */
export function defineScripts(redis: Redis, table: ScriptTable): void {
  for (const [name, [lua, keys]] of Object.entries(table)) redis.defineCommand(name, keys === undefined ? { lua } : { lua, numberOfKeys: keys });
}
