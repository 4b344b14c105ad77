import type { Redis } from 'ioredis';
import { connectRedis, REDIS_RELEASE_LOCK_SCRIPT, type BeatEntry, type RedisSettings } from '@celeriac/core/spi';
import type { BeatStore, EntryState } from './store.js';

/** Keys (owner: beat). Claims and the lease expire on their own; state and entries are one hash each. */
const KEYS = {
  leader: 'celeriac.beat.leader',
  state: 'celeriac.beat.state',
  entries: 'celeriac.beat.entries',
  claim: (name: string, slot: number) => `celeriac.beat.claim:${name}:${slot}`,
} as const;

const RENEW = `
-- renew-or-acquire: take the leader lease if free, or extend it if it is ours.
-- KEYS[1] lease key; ARGV[1] token; ARGV[2] lease ms. returns 1 when we hold it.
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
`;

/**
 * Beat state in Redis. The reference clock is Redis `TIME`, so beats on
 * machines with skewed clocks still agree on slots; the lease is `SET NX PX`
 * with a token; each slot is claimed with `SET NX PX` (the idempotency key),
 * its value the claiming beat's token so that a failed send can give it back.
 */
export class RedisBeatStore implements BeatStore {
  readonly kind = 'redis';

  private constructor(private readonly redis: Redis) {
    redis.defineCommand('celeriacBeatRenew', { lua: RENEW, numberOfKeys: 1 });
    redis.defineCommand('celeriacBeatRelease', { lua: REDIS_RELEASE_LOCK_SCRIPT, numberOfKeys: 1 });
  }

  static async open(settings: RedisSettings): Promise<RedisBeatStore> {
    return new RedisBeatStore(await connectRedis(settings));
  }

  async time(): Promise<number> {
    const [s, us] = await this.redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }
  async getState(name: string): Promise<EntryState | undefined> {
    const v = await this.redis.hget(KEYS.state, name);
    return v ? (JSON.parse(v) as EntryState) : undefined;
  }
  async setState(name: string, state: EntryState): Promise<void> {
    await this.redis.hset(KEYS.state, name, JSON.stringify(state));
  }
  async claimSlot(name: string, slot: number, ttlMs: number, owner?: string): Promise<boolean> {
    // The value is the owner's token ('1' without one, as claims were written before owners existed).
    return (await this.redis.set(KEYS.claim(name, slot), owner ?? '1', 'PX', ttlMs, 'NX')) === 'OK';
  }
  async releaseSlot(name: string, slot: number, owner: string): Promise<void> {
    if (owner === '' || owner === '1') return; // never an owner: those claims cannot be given back
    // The lease's compare-and-delete: only the owner's claim goes.
    await (this.redis as unknown as Renewer).celeriacBeatRelease(KEYS.claim(name, slot), owner);
  }
  async acquireLeadership(token: string, leaseMs: number): Promise<boolean> {
    return ((await (this.redis as unknown as Renewer).celeriacBeatRenew(KEYS.leader, token, leaseMs)) as number) === 1;
  }
  async releaseLeadership(token: string): Promise<void> {
    await (this.redis as unknown as Renewer).celeriacBeatRelease(KEYS.leader, token);
  }
  async listEntries(): Promise<BeatEntry[]> {
    return (await this.redis.hvals(KEYS.entries)).map((v) => JSON.parse(v) as BeatEntry);
  }
  async putEntry(entry: BeatEntry): Promise<void> {
    await this.redis.hset(KEYS.entries, entry.name, JSON.stringify(entry));
  }
  async removeEntry(name: string): Promise<boolean> {
    return (await this.redis.hdel(KEYS.entries, name)) === 1;
  }
  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

interface Renewer {
  celeriacBeatRenew(key: string, token: string, leaseMs: number): Promise<unknown>;
  celeriacBeatRelease(key: string, token: string): Promise<unknown>;
}
