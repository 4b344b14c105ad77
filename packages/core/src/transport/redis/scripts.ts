/**
 * The Redis transport's Lua scripts: each is one atomic step, with its
 * contract in its header. Keys follow kombu's layout so Python Celery workers
 * and celeriac share queues and can restore each other's unacknowledged work.
 */

import type { Redis, Result } from 'ioredis';
import { defineScripts, RELEASE_LOCK, SEP } from '../../drivers/redis/scripts.js';

export { SEP };

/**
 * Lua that takes up to ARGV[max] messages from the queue lists KEYS[4..] (each from its right end,
 * as kombu's BRPOP does) and records every one as unacknowledged, appending to `out` a flat
 * (queue key index 1-based into KEYS[4..], tag, delivery count, envelope text) per message.
 *
 * Why two ways to read the tag: decoding a whole envelope costs more than the rest of the step.
 * celeriac writes `properties` first with `delivery_tag` and `delivery_info` leading (key order
 * means nothing to JSON readers), so one anchored match reads them; any other envelope (Python's,
 * one marked redelivered by a restore, a malformed one) is decoded.
 *
 * Delivery counts: only messages delivered before have an entry in KEYS[3] (a requeue writes one,
 * and a message put back by a restore, kombu's or ours, is marked redelivered), so a first delivery
 * writes nothing there and the hash stays near empty.
 */
const take = (max: number | string, now: number | string): string => `local n = tonumber(ARGV[${max}])
for k = 4, #KEYS do
  while n > 0 do
    local item = redis.call('RPOP', KEYS[k])
    if not item then break end
    local tag, ex, rk = string.match(item, '^{"properties":{"delivery_tag":"([^"\\\\]+)","delivery_info":{"exchange":"([^"\\\\]*)","routing_key":"([^"\\\\]*)"}')
    local entry, again
    if tag then
      -- The envelope text is embedded as it is, so a restore (by kombu too) puts back exactly what was sent.
      entry = '[' .. item .. ', "' .. ex .. '", "' .. rk .. '"]'
    else
      local ok, env = pcall(cjson.decode, item)
      ex, rk = '', ''
      if ok and type(env) == 'table' and type(env.properties) == 'table' then
        tag = env.properties.delivery_tag
        local info = env.properties.delivery_info
        if type(info) == 'table' then
          if type(info.exchange) == 'string' then ex = info.exchange end
          if type(info.routing_key) == 'string' then rk = info.routing_key end
          again = info.redelivered == true
        end
        if type(env.headers) == 'table' and env.headers.redelivered == true then again = true end
      end
      if type(tag) ~= 'string' then tag = 'celeriac-undecodable-' .. redis.sha1hex(item) end
      if ok then entry = '[' .. item .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']'
      else entry = cjson.encode({item, ex, rk}) end
    end
    redis.call('HSET', KEYS[1], tag, entry)
    redis.call('ZADD', KEYS[2], ARGV[${now}], tag)
    local count = 1
    local before = redis.call('HGET', KEYS[3], tag)
    if before then count = tonumber(before) + 1 elseif again then count = 2 end
    if count > 1 then redis.call('HSET', KEYS[3], tag, count) end
    out[#out + 1] = k - 3
    out[#out + 1] = tag
    out[#out + 1] = count
    out[#out + 1] = item
    n = n - 1
  end
  if n == 0 then break end
end
`;

/**
 * Lua that acknowledges the (tag, delivery count) pairs ARGV[from..to], appending one flag each to
 * `out` (1 acknowledged, 0 no longer ours).
 *
 * Why the count: a restored message keeps its delivery_tag, so the unacked entry alone cannot tell
 * a paused owner from the worker it was handed to. The delivery count (KEYS[3], absent = 1) moves
 * on at every delivery: a settle carrying an older count is a stale owner's, and is refused.
 */
const settle = (from: number | string, to: string): string => `for i = ${from}, ${to}, 2 do
  local tag = ARGV[i]
  if ${owns('tag', 'ARGV[i + 1]')} and redis.call('HDEL', KEYS[1], tag) == 1 then
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[3], tag)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
`;

/** Lua condition: the delivery `tag` is still the one counted `count` (KEYS[3] deliveries; absent = 1). */
const owns = (tag: string, count: string): string => `(tonumber(redis.call('HGET', KEYS[3], ${tag})) or 1) == tonumber(${count})`;

const UNACKED_KEYS = `-- KEYS[1] unacked         hash  delivery_tag -> JSON [envelope, exchange, routing_key] (kombu)
-- KEYS[2] unacked_index   zset  delivery_tag -> delivery time, unix seconds (kombu)
-- KEYS[3] deliveries      hash  delivery_tag -> deliveries so far, for messages delivered before (celeriac; removed on ack);
--                               a settle names the count it was delivered with, and is refused when it moved on (fencing)`;

export const FETCH = `
-- fetch: take up to ARGV[1] messages from the queue lists KEYS[4..] (served in that order) and record
-- every one as unacknowledged, in one step: no message is ever popped without an unacked entry.
${UNACKED_KEYS}
-- ARGV[1] max messages; ARGV[2] now, unix seconds
-- returns a flat array: queue key index (1-based into KEYS[4..]), tag, delivery count, envelope text, ...
local out = {}
${take(1, 2)}return out
`;

export const ACK = `
-- ack: forget deliveries (kombu's ack: HDEL unacked + ZREM unacked_index), each fenced by its
-- unacked entry and its delivery count: if the entry is gone or the count moved on, the lease was
-- lost and the message was restored (and perhaps delivered again) elsewhere.
-- KEYS[1] unacked; KEYS[2] unacked_index; KEYS[3] deliveries
-- ARGV[1..2n] delivery tag, delivery count, ... (a batch: the acks of one event-loop turn)
-- returns one flag per tag: 1 acknowledged, 0 no longer ours
local out = {}
${settle(1, '#ARGV')}return out
`;

export const ACK_FETCH = `
-- ack-fetch: acknowledge a batch of deliveries (as ack) and take the next messages for the slots
-- they free (as fetch), in one step and one round trip (what BullMQ's moveToFinished does).
${UNACKED_KEYS}
-- KEYS[4..] queue lists, served in that order
-- ARGV[1] n = number of tags; ARGV[2..2n+1] delivery tag, delivery count, ...; ARGV[2n+2] max messages;
-- ARGV[2n+3] now, unix seconds
-- returns n ack flags (1 acknowledged, 0 no longer ours), then fetch's flat array
local out = {}
local last = 2 * tonumber(ARGV[1]) + 1
${settle(2, 'last')}${take('last + 1', 'last + 2')}return out
`;

export const RENEW = `
-- renew: refresh the index scores of deliveries that are still this consumer's, fenced like ack
-- (the unacked entry exists and carries the delivery count it was delivered with). A paused owner
-- that wakes up must not renew the entry of the worker its message was handed to: that would keep
-- the new owner's lease alive past the new owner's death, and make the stale owner trust its own.
${UNACKED_KEYS}
-- ARGV[1] now, unix seconds; ARGV[2..] delivery tag, delivery count, ...
-- returns one flag per tag: 1 renewed, 0 no longer ours
local out = {}
for i = 2, #ARGV, 2 do
  local tag = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], tag) == 1 and ${owns('tag', 'ARGV[i + 1]')} then
    redis.call('ZADD', KEYS[2], 'XX', ARGV[1], tag)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`;

export const REQUEUE = `
-- requeue: give a delivery back, now (RPUSH: next to be served, as kombu restores)
-- or later (into the delayed set), fenced by the unacked entry and the delivery count like ack.
-- KEYS[1] unacked; KEYS[2] unacked_index; KEYS[3] target queue list, or the delayed zset;
-- KEYS[4] deliveries (a first delivery has no entry yet: it gets one, so the next one counts 2)
-- ARGV[1] delivery tag; ARGV[2] envelope text (list) or delayed member (zset); ARGV[3] due ms, or '' for now;
-- ARGV[4] the delivery count it was delivered with
-- returns 1 when requeued, 0 when the entry was no longer ours
if (tonumber(redis.call('HGET', KEYS[4], ARGV[1])) or 1) ~= tonumber(ARGV[4]) then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSETNX', KEYS[4], ARGV[1], 1)
if ARGV[3] == '' then redis.call('RPUSH', KEYS[3], ARGV[2])
else redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
return 1
`;

export const DEAD_LETTER = `
-- dead-letter: record why a delivery was set aside and acknowledge it, in one step.
-- KEYS[1] unacked; KEYS[2] unacked_index; KEYS[3] deliveries; KEYS[4] dead letters (hash id -> record);
-- KEYS[5] dead-letter index (zset id -> failed at, ms)
-- ARGV[1] delivery tag; ARGV[2] record id; ARGV[3] record JSON; ARGV[4] the delivery count it was delivered with;
-- ARGV[5] failed at, ms
-- returns 1, or 0 when the delivery was no longer ours (nothing written)
if not ${owns('ARGV[1]', 'ARGV[4]')} then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[2])
return 1
`;

export const TAKE_DEAD_LETTER = `
-- take-dead-letter: remove a dead letter (and its index entry) and return it; with ARGV[2], only
-- when its record failed at that time (a newer record under the same id stays).
-- KEYS[1] dead letters (hash id -> record JSON); KEYS[2] dead-letter index (zset)
-- ARGV[1] record id; ARGV[2] failed at (ms), or '' for any
-- returns the record JSON, or false
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
if ARGV[2] ~= '' then
  local ok, r = pcall(cjson.decode, record)
  if not ok or type(r) ~= 'table' or tonumber(r.failedAt) ~= tonumber(ARGV[2]) then return false end
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return record
`;

export const PROMOTE = `
-- promote: move delayed messages that are due onto their queue lists; each moves exactly once
-- (ZREM in the same step), so any number of workers can run it.
-- KEYS[1] delayed zset: member = <queue list key> .. SEP .. <envelope text>, score = due ms
-- ARGV[1] now ms; ARGV[2] max to move; ARGV[3] key prefix of this connection; ARGV[4] wake channel
-- returns {moved, next due ms or -1}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local at = string.find(member, '\\6\\22', 1, true)
  if at then
    redis.call('LPUSH', ARGV[3] .. string.sub(member, 1, at - 1), string.sub(member, at + 2))
  end
  redis.call('ZREM', KEYS[1], member)
end
if #due > 0 then redis.call('PUBLISH', ARGV[4], '') end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] then return {#due, tonumber(head[2])} end
return {#due, -1}
`;

export const RESTORE_ONE = `
-- restore-one: put back one unacknowledged message whose owner stopped renewing it
-- (its index score is still at or before the cutoff), as kombu's restore_visible does.
-- KEYS[1] unacked; KEYS[2] unacked_index; KEYS[3] target queue list
-- ARGV[1] delivery tag; ARGV[2] cutoff, unix seconds; ARGV[3] envelope text marked redelivered
-- returns 1 when restored, 0 when it was renewed or settled meanwhile
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return 0 end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1
`;

export const NOTIFY_DIRECT = `
-- notify-direct: deliver a notice to every queue bound to a direct exchange with this exact
-- routing key (kombu's _lookup + _put: how remote-control replies reach the caller's reply queue).
-- Each receiving list expires after ARGV[4] ms without notices, so a caller that went away leaves nothing.
-- KEYS[1] _kombu.binding.<exchange>  set of 'routing_key' .. SEP .. 'pattern' .. SEP .. 'queue' (kombu)
-- ARGV[1] routing key; ARGV[2] envelope text; ARGV[3] key prefix of this connection; ARGV[4] list TTL ms
-- returns the number of queues that received it
local n = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local a = string.find(member, '\\6\\22', 1, true)
  if a and string.sub(member, 1, a - 1) == ARGV[1] then
    local b = string.find(member, '\\6\\22', a + 2, true)
    if b then
      local key = ARGV[3] .. string.sub(member, b + 2)
      redis.call('LPUSH', key, ARGV[2])
      redis.call('PEXPIRE', key, tonumber(ARGV[4]))
      n = n + 1
    end
  end
end
return n
`;

/** The transport's Lua scripts, as commands of a connection. */
export function defineTransportScripts(redis: Redis): void {
  defineScripts(redis, {
    celeriacFetch: [FETCH, undefined],
    celeriacAckFetch: [ACK_FETCH, undefined],
    celeriacAck: [ACK, 3],
    celeriacRenew: [RENEW, 3],
    celeriacRequeue: [REQUEUE, 4],
    celeriacDeadLetter: [DEAD_LETTER, 5],
    celeriacPromote: [PROMOTE, 1],
    celeriacTakeDeadLetter: [TAKE_DEAD_LETTER, 2],
    celeriacRestoreOne: [RESTORE_ONE, 3],
    celeriacReleaseLock: [RELEASE_LOCK, 1],
    celeriacNotifyDirect: [NOTIFY_DIRECT, 1],
  });
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    // The consumer reads fetch replies as Buffers: ioredis's `…Buffer` forms of the two scripts.
    celeriacFetchBuffer(numKeys: number, ...args: (string | number)[]): Result<unknown, Context>;
    celeriacAckFetchBuffer(numKeys: number, ...args: (string | number)[]): Result<unknown, Context>;
    celeriacAck(...args: (string | number)[]): Result<unknown, Context>;
    celeriacRenew(...args: (string | number)[]): Result<unknown, Context>;
    celeriacRequeue(...args: (string | number)[]): Result<unknown, Context>;
    celeriacDeadLetter(...args: (string | number)[]): Result<unknown, Context>;
    celeriacPromote(...args: (string | number)[]): Result<unknown, Context>;
    celeriacTakeDeadLetter(...args: (string | number)[]): Result<unknown, Context>;
    celeriacRestoreOne(...args: (string | number)[]): Result<unknown, Context>;
    celeriacReleaseLock(...args: (string | number)[]): Result<unknown, Context>;
    celeriacNotifyDirect(...args: (string | number)[]): Result<unknown, Context>;
  }
}
