/**
 * The Redis result backend's Lua scripts (Celery's key layout): each one atomic step, its contract
 * in its header.
 */
export const STORE_RESULT = `
-- store-result: write celery-task-meta-<id> with an expiry and PUBLISH it on a channel of the
-- same name (Celery's waiters only hear the PUBLISH); a stored SUCCESS is never overwritten.
-- KEYS[1] the meta key; ARGV[1] meta JSON; ARGV[2] expiry ms
-- returns 1 when stored, 0 when a SUCCESS was already there
local current = redis.call('GET', KEYS[1])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and meta.status == 'SUCCESS' then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
`;

export const CHORD_PART_RETURN = `
-- chord-part-return: join one header member into Celery's chord keys; to the member that completes
-- the chord, return every member. The keys stay (with their expiry) until chord-complete says the
-- body was sent: a completer that died first is run again (its message was not acked), joins again
-- and gets the members again — the body is never lost between the join and its send.
-- Members are counted by their group_index (the score), so a member that ran twice counts once.
-- KEYS[1] celery-taskset-meta-<gid>.j (zset: JSON [1, id, state, result] scored by group_index)
-- KEYS[2] celery-taskset-meta-<gid>.s (header size); KEYS[3] ...t (members added by add_to_chord)
-- KEYS[4] celery-taskset-meta-<gid>.d (celeriac: the body was sent; a late member writes nothing)
-- KEYS[5] celery-taskset-meta-<gid>.c (celeriac: the group_index that completed the join: only it,
--         or its own re-run, gets the members — a member whose reply was lost and that retries does not)
-- ARGV[1] group_index; ARGV[2] member JSON; ARGV[3] expiry ms of the join keys
-- returns the members with their scores (flat: member, score, ...) to the completer, else false
if redis.call('EXISTS', KEYS[4]) == 1 then return false end
if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) == 0 then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local size = redis.call('GET', KEYS[2])
if not size then return false end
local total = tonumber(size) + tonumber(redis.call('GET', KEYS[3]) or '0')
if redis.call('ZCARD', KEYS[1]) < total then return false end
redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[3])
if redis.call('GET', KEYS[5]) ~= ARGV[1] then return false end
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
`;

export const CHORD_COMPLETE = `
-- chord-complete: the body of a completed chord was sent: mark the join done and delete its keys.
-- KEYS[1] .j; KEYS[2] .s; KEYS[3] .t; KEYS[4] .d; KEYS[5] .c (see chord-part-return); ARGV[1] expiry ms of the mark
-- returns 1
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
return 1
`;

export const DEDUP_CLAIM = `
-- dedup-claim: deduplicated sends (applyAsync's deduplicate). Keep mode: the key names its holder
-- (a task id) until it expires; a second claim gets the holder back and sends nothing. Replace mode
-- (debounce): the new task becomes the holder and the expiry starts again; the old holder comes back
-- so the caller can revoke it.
-- KEYS[1] celeriac-dedup-<task name>-<id>; ARGV[1] task id; ARGV[2] ttl ms; ARGV[3] '1' replace, '0' keep
-- returns the previous holder's task id, or false when there was none (this one holds it now)
local holder = redis.call('GET', KEYS[1])
if holder and ARGV[3] == '0' then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return holder
`;

export const DEDUP_RELEASE = `
-- dedup-release: drop a dedup key if the given task still holds it (its send failed).
-- KEYS[1] the dedup key; ARGV[1] task id
-- returns 1 when dropped, 0 when another task holds it (or nobody)
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export const RATE_RESERVE = `
-- rate-reserve: book the next slot of a fleet-wide rate limit on Redis's clock (one clock for every
-- worker, whatever their skew). Slots are interval ms apart; the key holds the next free one.
-- KEYS[1] celeriac-rate-<bucket> (next free slot, epoch ms); KEYS[2] celeriac-rate-limit-<task>
--         (an override interval in ms set by remote control, or 'none': the limit is lifted)
-- ARGV[1] the task's own interval ms
-- returns ms until the booked slot (0: now)
local override = redis.call('GET', KEYS[2])
if override == 'none' then return 0 end
local interval = tonumber(override or ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], slot + interval, 'PX', math.ceil(slot + interval - now) + 1000)
return slot - now
`;

export const LEASE_ACQUIRE = `
-- lease-acquire: take (or renew) one of N leases of a fleet-wide concurrency key. Expired leases (a
-- holder whose worker died and stopped renewing) are dropped first.
-- KEYS[1] celeriac-lease-<key> (zset: holder -> lease expiry, epoch ms)
-- ARGV[1] holder (task id); ARGV[2] limit; ARGV[3] lease ms
-- returns 1 when the holder has a lease now, 0 when all N are held by others
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

export const KEEP_FAILED = `
-- keep-failed: add a failed task to the registry and apply its retention, in one step.
-- KEYS[1] celeriac.failed (zset: id scored by ended-at ms); KEYS[2] celeriac.failed.records (hash: id -> record JSON)
-- ARGV[1] id; ARGV[2] ended-at ms; ARGV[3] record JSON; ARGV[4] max count; ARGV[5] oldest ended-at kept (ms)
-- returns how many records the retention dropped
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local dropped = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
local over = redis.call('ZCARD', KEYS[1]) - #dropped - tonumber(ARGV[4])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], #dropped, #dropped + over - 1)) do dropped[#dropped + 1] = id end
end
for _, id in ipairs(dropped) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return #dropped
`;

export const TAKE_FAILED = `
-- take-failed: remove one failed task from the registry and return it.
-- KEYS[1] celeriac.failed; KEYS[2] celeriac.failed.records; ARGV[1] id
-- returns the record JSON, or false when it is not there
local record = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return record
`;
