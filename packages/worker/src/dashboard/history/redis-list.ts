/**
 * The Redis history's list script (layout: `redis-scripts.ts`): filters, order, total and page of
 * the task list in one atomic step, with the cost of each path bounded as its comments say.
 */
import { TASK_STATES } from '../model.js';
import { TEXT_SORTS } from './redis-scripts.js';

const luaTable = (o: Record<string, string>): string => `{${Object.entries(o).map(([k, v]) => `${k} = '${v}'`).join(', ')}}`;

/** Candidates a text search reads at most, in the list's order: its cost bound (a few tens of ms). */
export const MAX_TEXT_SCAN = 20_000;

/**
 * list-tasks: one page of the task list, filtered, sorted and counted in one step.
 * KEYS[1] scratch key base: `<base>:*` temporaries are created and deleted before it returns.
 * ARGV[1] prefix; [2] sort key (updatedAt | a numeric sort | name, state, worker, queue); [3] asc|desc;
 * [4] offset; [5] limit; [6] from, [7] to (updatedAt scores, -inf / +inf when open); [8] text,
 * ASCII-lowercased ('' none); [9] most candidates a text search or id prefix reads; [10] id prefix;
 * [11] name (exact, or prefix ending in *); [12] worker; [13] queue ('' none); [14..] states.
 * returns {total, exact (0: a text search stopped after ARGV[9] candidates), id...}.
 * Atomic: the page and its total come from one state of the history.
 */
export const LIST_TASKS = `
local P, sortKey, desc = ARGV[1], ARGV[2], ARGV[3] == 'desc'
local offset, limit, from, to = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local text, maxScan = ARGV[8], tonumber(ARGV[9])
local temps, groups, unions, timed, empty = {}, {}, {}, true, false
local function temp(name)
  local k = KEYS[1] .. ':' .. name
  temps[#temps + 1] = k
  return k
end
-- A filter: the union of keys (all scored by updatedAt, each task in at most one of them).
-- A union is built only when needed (see merged below).
local function filter(keys, name)
  if #keys == 0 then empty = true return end
  if #keys == 1 then groups[#groups + 1] = keys[1] return end
  unions[#unions + 1] = {keys = keys, name = name}
end
if ARGV[10] ~= '' then
  local ids = redis.call('ZRANGEBYLEX', P .. 'ids', '[' .. ARGV[10], '[' .. ARGV[10] .. '\\255', 'LIMIT', 0, maxScan)
  if #ids == 0 then empty = true else
    local k = temp('id')
    for i = 1, #ids, 1000 do
      local args = {}
      for j = i, math.min(i + 999, #ids) do args[#args + 1] = 0 args[#args + 1] = ids[j] end
      redis.call('ZADD', k, unpack(args))
    end
    groups[#groups + 1] = k
    timed = false
  end
end
if ARGV[11] ~= '' then
  local name, keys = ARGV[11], {}
  if string.sub(name, -1) == '*' then
    local p = string.sub(name, 1, -2)
    for _, n in ipairs(redis.call('ZRANGEBYLEX', P .. 'names', '[' .. p, '[' .. p .. '\\255')) do keys[#keys + 1] = P .. 'i:name:' .. n end
  else keys[1] = P .. 'i:name:' .. name end
  filter(keys, 'name')
end
if ARGV[12] ~= '' then filter({P .. 'i:worker:' .. ARGV[12]}, 'worker') end
if ARGV[13] ~= '' then filter({P .. 'i:queue:' .. ARGV[13]}, 'queue') end
if #ARGV >= 14 then
  local keys = {}
  for i = 14, #ARGV do keys[#keys + 1] = P .. 'i:state:' .. ARGV[i] end
  filter(keys, 'states')
end
local ranged = from ~= '-inf' or to ~= '+inf'
local byTime = sortKey == 'updatedAt'
if ranged and not byTime then
  local k = temp('range')
  redis.call('ZRANGESTORE', k, P .. 'i:all', from, to, 'BYSCORE')
  groups[#groups + 1] = k
end
local function done(out)
  if #temps > 0 then redis.call('DEL', unpack(temps)) end
  return out
end
if empty then return done({0, 1}) end
-- The page of one union of disjoint sets scored by updatedAt (several states, a name prefix), in
-- updatedAt order, without building the union (ZUNIONSTORE of 95,000 tasks costs ~100 ms): the
-- total is a sum of counts; the page starts at the score t where offset tasks come before it,
-- found by bisecting the (integer ms) scores, K ZCOUNTs a step; then it is merged from the sets.
local function merged(keys)
  local function count(lo_, hi_)
    local n = 0
    for _, k in ipairs(keys) do n = n + redis.call('ZCOUNT', k, lo_, hi_) end
    return n
  end
  local out = {count(from, to), 1}
  if offset >= out[1] then return out end
  local lo, hi
  for _, k in ipairs(keys) do
    local first = redis.call('ZRANGE', k, from, to, 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
    local last = redis.call('ZRANGE', k, to, from, 'BYSCORE', 'REV', 'LIMIT', 0, 1, 'WITHSCORES')
    if first[2] and (not lo or tonumber(first[2]) < lo) then lo = tonumber(first[2]) end
    if last[2] and (not hi or tonumber(last[2]) > hi) then hi = tonumber(last[2]) end
  end
  local t, skip, cand = nil, 0, {}
  if desc then
    -- The highest t with more than offset tasks at or above it.
    local a, b = lo, hi
    while a < b do
      local m = math.floor((a + b + 1) / 2)
      if count(m, to) > offset then a = m else b = m - 1 end
    end
    t, skip = a, offset - count('(' .. a, to)
    for _, k in ipairs(keys) do
      local r = redis.call('ZRANGE', k, t, from, 'BYSCORE', 'REV', 'LIMIT', 0, skip + limit, 'WITHSCORES')
      for i = 1, #r, 2 do cand[#cand + 1] = {tonumber(r[i + 1]), r[i]} end
    end
    table.sort(cand, function(x, y) if x[1] ~= y[1] then return x[1] > y[1] end return x[2] > y[2] end)
  else
    local a, b = lo, hi
    while a < b do
      local m = math.floor((a + b) / 2)
      if count(from, m) > offset then b = m else a = m + 1 end
    end
    t, skip = a, offset - count(from, '(' .. a)
    for _, k in ipairs(keys) do
      local r = redis.call('ZRANGE', k, t, to, 'BYSCORE', 'LIMIT', 0, skip + limit, 'WITHSCORES')
      for i = 1, #r, 2 do cand[#cand + 1] = {tonumber(r[i + 1]), r[i]} end
    end
    table.sort(cand, function(x, y) if x[1] ~= y[1] then return x[1] < y[1] end return x[2] < y[2] end)
  end
  for i = skip + 1, math.min(#cand, skip + limit) do out[#out + 1] = cand[i][2] end
  return out
end
if sortKey == 'updatedAt' and text == '' and #groups == 0 and #unions == 1 and #unions[1].keys <= 64 then
  return done(merged(unions[1].keys))
end
for _, u in ipairs(unions) do
  local k = temp(u.name)
  redis.call('ZUNIONSTORE', k, #u.keys, unpack(u.keys))
  groups[#groups + 1] = k
end
local numeric = byTime or sortKey == 'sentAt' or sortKey == 'receivedAt' or sortKey == 'startedAt' or sortKey == 'endedAt' or sortKey == 'runtime'
local sorted = numeric and (byTime and P .. 'i:all' or P .. 's:' .. sortKey) or P .. 'i:all'
local src = sorted
-- One filter scored by updatedAt serves as it is when that is the order, or when a text key orders.
if #groups == 1 and ((byTime and timed) or not numeric) then src = groups[1]
elseif #groups > 0 and byTime and timed then
  -- Every filter is scored by updatedAt already: intersect them alone (not with all tasks), keeping that score.
  src = temp('set')
  local args = {'ZINTERSTORE', src, #groups}
  for _, g in ipairs(groups) do args[#args + 1] = g end
  args[#args + 1] = 'AGGREGATE'
  args[#args + 1] = 'MAX'
  redis.call(unpack(args))
elseif #groups > 0 then
  src = temp('set')
  local args = {'ZINTERSTORE', src, #groups + 1, sorted}
  for _, g in ipairs(groups) do args[#args + 1] = g end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for _ = 1, #groups do args[#args + 1] = 0 end
  redis.call(unpack(args))
end
-- The list's order as segments read one after another: one sorted set for a numeric key; for a
-- text key, one per value in lex order (its index, cut down to the filtered set), each by updatedAt.
local segs = {}
if numeric then
  segs[1] = {key = src, score = byTime and ranged}
else
  local family, values = (${luaTable(Object.fromEntries(Object.entries(TEXT_SORTS).map(([k, v]) => [k, v[0]])))})[sortKey], {}
  if sortKey == 'state' then values = {${[...TASK_STATES].sort().map((v) => `'${v}'`).join(', ')}}
  else
    values[1] = '\\0'
    for _, v in ipairs(redis.call('ZRANGE', P .. (${luaTable(Object.fromEntries(Object.entries(TEXT_SORTS).map(([k, v]) => [k, v[1]])))})[sortKey], 0, -1)) do values[#values + 1] = v end
  end
  local from_, to_, step = 1, #values, 1
  if desc then from_, to_, step = #values, 1, -1 end
  for i = from_, to_, step do
    local key = P .. family .. values[i]
    local seg = {key = key}
    if #groups == 0 then seg.n = redis.call('ZCARD', key)
    else
      local c = redis.pcall('ZINTERCARD', 2, key, src)
      if type(c) == 'number' then seg.n, seg.cut = c, true
      else -- Redis 6.2 has no ZINTERCARD: cut the segment now.
        seg.key = temp('v' .. i)
        seg.n = redis.call('ZINTERSTORE', seg.key, 2, key, src, 'WEIGHTS', 1, 0)
      end
    end
    if seg.n > 0 then segs[#segs + 1] = seg end
  end
end
local function count(seg)
  if not seg.n then
    if seg.score then seg.n = redis.call('ZCOUNT', seg.key, from, to) else seg.n = redis.call('ZCARD', seg.key) end
  end
  return seg.n
end
local function read(seg, s, n)
  if seg.cut then
    local key = temp('c' .. #temps)
    redis.call('ZINTERSTORE', key, 2, seg.key, src, 'WEIGHTS', 1, 0)
    seg.key, seg.cut = key, false
  end
  if seg.score then
    if desc then return redis.call('ZRANGE', seg.key, to, from, 'BYSCORE', 'REV', 'LIMIT', s, n) end
    return redis.call('ZRANGE', seg.key, from, to, 'BYSCORE', 'LIMIT', s, n)
  end
  if desc then return redis.call('ZRANGE', seg.key, s, s + n - 1, 'REV') end
  return redis.call('ZRANGE', seg.key, s, s + n - 1)
end
-- Up to n ids from position pos of the whole order.
local function chunk(pos, n)
  local got, base = {}, 0
  for _, seg in ipairs(segs) do
    if #got >= n then break end
    local c = count(seg)
    if pos < base + c then
      local ids = read(seg, pos - base, math.min(n - #got, base + c - pos))
      for _, id in ipairs(ids) do got[#got + 1] = id end
      pos = pos + #ids
    end
    base = base + c
  end
  return got
end
local out = {0, 1}
if text == '' then
  for _, seg in ipairs(segs) do out[1] = out[1] + count(seg) end
  if limit > 0 and offset < out[1] then for _, id in ipairs(chunk(offset, limit)) do out[#out + 1] = id end end
  return done(out)
end
local matched, scanned = 0, 0
while true do
  if scanned >= maxScan then out[2] = 0 break end
  local n = math.min(500, maxScan - scanned)
  local ids = chunk(scanned, n)
  if #ids > 0 then
    local texts = redis.call('HMGET', P .. 'q', unpack(ids))
    for k, id in ipairs(ids) do
      if texts[k] and string.find(texts[k], text, 1, true) then
        if matched >= offset and matched < offset + limit then out[#out + 1] = id end
        matched = matched + 1
      end
    end
  end
  scanned = scanned + #ids
  if #ids < n then break end
end
out[1] = matched
return done(out)
`;

