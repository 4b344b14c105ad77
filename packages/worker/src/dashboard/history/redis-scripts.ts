/**
 * The Redis history's key layout and its write and prune scripts (the list's is `redis-list.ts`),
 * each one atomic step with its contract in its header. Keys live under one prefix
 * (`celeriac:dash:` after the URL's `keyPrefix`):
 *
 *  - `t:<id>` hash: the task record (a field is absent when its value is null), plus `stateAt`;
 *  - `q` hash: id → the searched fields (args, kwargs, result, exception) ASCII-lowercased, what a
 *    text search reads: one HMGET per 500 candidates, no lowercasing in the scan;
 *  - `tl:<id>`, `log:<id>` sorted sets: timeline entries and log lines scored by their time;
 *  - `i:all`, `i:open` (not final), `i:state:<S>`, `i:name:<n>`, `i:worker:<w>`, `i:queue:<q>`,
 *    `i:parent:<id>`, `i:group:<id>` sorted sets of ids scored by updatedAt: the list's filters;
 *  - `s:<key>` sorted sets of every id scored by a numeric sort key (-1 when the task has none);
 *  - `done:SUCCESS`, `done:FAILURE` scored by endedAt: throughput and failure counts;
 *  - `ids`, `names`, `workers`, `queues` (score 0, read by lex range): id prefixes, `name=prefix*`,
 *    and the values a text sort key walks in order (see `TEXT_SORTS`).
 *
 * Scripts build key names from the prefix, so the history needs one Redis node (or sentinel), not
 * a cluster. The value sets keep values whose tasks were pruned (a few bytes each; their indexes
 * are empty).
 */

/** Sort keys kept as numeric sorted sets. */
export const NUMERIC_SORTS = ['sentAt', 'receivedAt', 'startedAt', 'endedAt', 'runtime'] as const;
/** Index families holding one entry per task, keyed by one of its fields. */
export const FIELD_INDEXES = { state: 'i:state:', name: 'i:name:', worker: 'i:worker:', queue: 'i:queue:', parentId: 'i:parent:', groupId: 'i:group:' } as const;
/** Sorted sets every task may be in whatever its fields. */
export const GLOBAL_INDEXES = ['i:all', 'i:open', 'ids', 'done:SUCCESS', 'done:FAILURE', ...NUMERIC_SORTS.map((k) => `s:${k}`)] as const;
/**
 * Text sort keys: the index family of each, and the sorted set of its values (score 0, so in lex
 * order). A null value is indexed under {@link NULL_VALUE}, so it sorts first ascending, as in SQLite.
 */
export const TEXT_SORTS = { name: ['i:name:', 'names'], state: ['i:state:', ''], worker: ['i:worker:', 'workers'], queue: ['i:queue:', 'queues'] } as const;
export const NULL_VALUE = '\u0000';

/**
 * prune-tasks: delete the tasks ARGV[3..] last updated at or before ARGV[2] (one updated since it
 * was picked, by another dashboard, stays), each with its timeline, logs and every index entry.
 * KEYS: none (every key derives from the prefix ARGV[1]). returns how many it deleted.
 * Atomic: a task leaves its hash and all its indexes in one step, so no list shows half of one.
 */
export const PRUNE_TASKS = `
local P, newest, n = ARGV[1], tonumber(ARGV[2]), 0
local fields = {${Object.keys(FIELD_INDEXES).map((f) => `'${f}'`).join(', ')}}
local families = {${Object.values(FIELD_INDEXES).map((f) => `'${f}'`).join(', ')}}
local nullable = {${Object.keys(FIELD_INDEXES).map((f) => (f in TEXT_SORTS && f !== 'state' ? 'true' : 'false')).join(', ')}}
local globals = {${GLOBAL_INDEXES.map((k) => `'${k}'`).join(', ')}}
for i = 3, #ARGV do
  local id = ARGV[i]
  local h = P .. 't:' .. id
  local values = redis.call('HMGET', h, 'updatedAt', unpack(fields))
  local updated = tonumber(values[1])
  if not updated or updated <= newest then
    for k = 1, #fields do
      local v = values[k + 1]
      if v then redis.call('ZREM', P .. families[k] .. v, id)
      elseif nullable[k] then redis.call('ZREM', P .. families[k] .. '\\0', id) end
    end
    for _, k in ipairs(globals) do redis.call('ZREM', P .. k, id) end
    n = n + redis.call('DEL', h)
    redis.call('HDEL', P .. 'q', id)
    redis.call('DEL', P .. 'tl:' .. id, P .. 'log:' .. id)
  end
end
return n
`;

/**
 * write-tasks: apply the writes of a batch, each ARGV[4..] one task's JSON
 * `{id, set: {field: value}, q?: search text, add: [[key, score]...], rem: [key...], vals: [[set, value]...], tl: [[score, member]...], log: [...]}`
 * (keys relative to the prefix): set its hash fields, add it to (or move it within) the indexes
 * `add`, leave the indexes `rem`, record new values of text sort keys (`vals`), and append timeline / log entries capped at
 * ARGV[2] / ARGV[3] per task (the latest kept). KEYS: none (every key derives from the prefix
 * ARGV[1]). returns the number of tasks written. Run inside MULTI under WATCH of the task hashes:
 * the merge that computed it read them, so a concurrent writer aborts it rather than being lost.
 */
export const WRITE_TASKS = `
local P, maxTl, maxLog = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function entries(key, list, cap)
  if #list == 0 then return end
  local args = {}
  for _, e in ipairs(list) do args[#args + 1] = e[1] args[#args + 1] = e[2] end
  redis.call('ZADD', key, unpack(args))
  redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
end
for i = 4, #ARGV do
  local t = cjson.decode(ARGV[i])
  local id = t.id
  local fields = {}
  for k, v in pairs(t.set) do fields[#fields + 1] = k fields[#fields + 1] = v end
  if #fields > 0 then redis.call('HSET', P .. 't:' .. id, unpack(fields)) end
  if t.q then redis.call('HSET', P .. 'q', id, t.q) end
  for _, k in ipairs(t.rem) do redis.call('ZREM', P .. k, id) end
  for _, a in ipairs(t.add) do redis.call('ZADD', P .. a[1], a[2], id) end
  for _, v in ipairs(t.vals) do redis.call('ZADD', P .. v[1], 0, v[2]) end
  entries(P .. 'tl:' .. id, t.tl, maxTl)
  entries(P .. 'log:' .. id, t.log, maxLog)
end
return #ARGV - 3
`;
