/**
 * The Redis history's key layout and its Lua scripts, each one atomic step with its contract in
 * its header. Keys live under one prefix (`celeriac:dash:` after the URL's `keyPrefix`):
 *
 *  - `t:<id>` hash: the task record (a field is absent when its value is null), plus `stateAt`;
 *  - `tl:<id>`, `log:<id>` sorted sets: timeline entries and log lines scored by their time;
 *  - `i:all`, `i:open` (not final), `i:state:<S>`, `i:name:<n>`, `i:worker:<w>`, `i:queue:<q>`,
 *    `i:parent:<id>`, `i:group:<id>` sorted sets of ids scored by updatedAt: the list's filters;
 *  - `s:<key>` sorted sets of every id scored by a numeric sort key (-1 when the task has none);
 *  - `done:SUCCESS`, `done:FAILURE` scored by endedAt: throughput and failure counts;
 *  - `ids`, `names` (score 0, read by lex range): id prefixes and `name=prefix*`.
 *
 * Scripts build key names from the prefix, so the history needs one Redis node (or sentinel), not
 * a cluster. `names` keeps names whose tasks were pruned (a few bytes each; their indexes are empty).
 */

/** Sort keys kept as numeric sorted sets (the string ones are sorted by SORT ... ALPHA). */
export const NUMERIC_SORTS = ['sentAt', 'receivedAt', 'startedAt', 'endedAt', 'runtime'] as const;
/** Index families holding one entry per task, keyed by one of its fields. */
export const FIELD_INDEXES = { state: 'i:state:', name: 'i:name:', worker: 'i:worker:', queue: 'i:queue:', parentId: 'i:parent:', groupId: 'i:group:' } as const;
/** Sorted sets every task may be in whatever its fields. */
export const GLOBAL_INDEXES = ['i:all', 'i:open', 'ids', 'done:SUCCESS', 'done:FAILURE', ...NUMERIC_SORTS.map((k) => `s:${k}`)] as const;
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
local temps, groups, timed, empty = {}, {}, true, false
local function temp(name)
  local k = KEYS[1] .. ':' .. name
  temps[#temps + 1] = k
  return k
end
-- A filter: the union of keys (all scored by updatedAt, each task in at most one of them).
local function filter(keys, name)
  if #keys == 0 then empty = true return end
  if #keys == 1 then groups[#groups + 1] = keys[1] return end
  local k = temp(name)
  redis.call('ZUNIONSTORE', k, #keys, unpack(keys))
  groups[#groups + 1] = k
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
local numeric = byTime or sortKey == 'sentAt' or sortKey == 'receivedAt' or sortKey == 'startedAt' or sortKey == 'endedAt' or sortKey == 'runtime'
local sorted = byTime and P .. 'i:all' or (numeric and P .. 's:' .. sortKey or P .. 'i:all')
local src = sorted
if #groups == 1 and byTime and timed then src = groups[1]
elseif #groups > 0 then
  src = temp('set')
  local args = {'ZINTERSTORE', src, #groups + 1, sorted}
  for _, g in ipairs(groups) do args[#args + 1] = g end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for _ = 1, #groups do args[#args + 1] = 0 end
  redis.call(unpack(args))
end
local mode = numeric and ((byTime and ranged) and 'score' or 'rank') or 'list'
if mode == 'list' then
  local l = temp('sorted')
  if desc then redis.call('SORT', src, 'BY', P .. 't:*->' .. sortKey, 'ALPHA', 'DESC', 'STORE', l)
  else redis.call('SORT', src, 'BY', P .. 't:*->' .. sortKey, 'ALPHA', 'STORE', l) end
  src = l
end
local function chunk(s, n)
  if mode == 'list' then return redis.call('LRANGE', src, s, s + n - 1) end
  if mode == 'score' then
    if desc then return redis.call('ZRANGE', src, to, from, 'BYSCORE', 'REV', 'LIMIT', s, n) end
    return redis.call('ZRANGE', src, from, to, 'BYSCORE', 'LIMIT', s, n)
  end
  if desc then return redis.call('ZRANGE', src, s, s + n - 1, 'REV') end
  return redis.call('ZRANGE', src, s, s + n - 1)
end
local out = {0, 1}
if text == '' then
  if mode == 'list' then out[1] = redis.call('LLEN', src)
  elseif mode == 'score' then out[1] = redis.call('ZCOUNT', src, from, to)
  else out[1] = redis.call('ZCARD', src) end
  if limit > 0 and offset < out[1] then for _, id in ipairs(chunk(offset, limit)) do out[#out + 1] = id end end
  return done(out)
end
local matched, scanned = 0, 0
while true do
  if scanned >= maxScan then out[2] = 0 break end
  local n = math.min(500, maxScan - scanned)
  local ids = chunk(scanned, n)
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', P .. 't:' .. id, 'args', 'kwargs', 'result', 'exception')
    for i = 1, 4 do
      if f[i] and string.find(string.lower(f[i]), text, 1, true) then
        if matched >= offset and matched < offset + limit then out[#out + 1] = id end
        matched = matched + 1
        break
      end
    end
  end
  scanned = scanned + #ids
  if #ids < n then break end
end
out[1] = matched
return done(out)
`;

/**
 * prune-tasks: delete the tasks ARGV[2..], each with its timeline, logs and every index entry.
 * KEYS: none (every key derives from the prefix ARGV[1]). returns how many of them existed.
 * Atomic: a task leaves its hash and all its indexes in one step, so no list shows half of one.
 */
export const PRUNE_TASKS = `
local P, n = ARGV[1], 0
local fields = {${Object.keys(FIELD_INDEXES).map((f) => `'${f}'`).join(', ')}}
local families = {${Object.values(FIELD_INDEXES).map((f) => `'${f}'`).join(', ')}}
local globals = {${GLOBAL_INDEXES.map((k) => `'${k}'`).join(', ')}}
for i = 2, #ARGV do
  local id = ARGV[i]
  local h = P .. 't:' .. id
  local values = redis.call('HMGET', h, unpack(fields))
  for k = 1, #fields do
    if values[k] then redis.call('ZREM', P .. families[k] .. values[k], id) end
  end
  for _, k in ipairs(globals) do redis.call('ZREM', P .. k, id) end
  n = n + redis.call('DEL', h)
  redis.call('DEL', P .. 'tl:' .. id, P .. 'log:' .. id)
end
return n
`;
