-- The work queue of one spider: one list per priority level (see state/queue.py).
--
-- A library, not a script: it only defines local functions and touches no key by
-- itself.  state/queue.py prepends it to every script that writes or reads a work
-- queue (take, requeue, reclaim, the relay's move, pushes, the frontier's admit in
-- cache.lua); any other script can do the same (``queue.with_library(body)``).
--
-- Every key is derived from the spider's work key W (``microspider:{NAME}:work``),
-- exactly as state/keys.py names them, so they share W's hash tag (one cluster slot):
--   W                  list  level 0, the default priority (the work queue of 0.3 and before)
--   W .. ':' .. N      list  level N, a non-zero integer; head = next
--   W .. ':levels'     zset  the non-zero levels that may hold seeds (member N as text, score N)
-- A script must name W in its KEYS so that a cluster client routes it to W's slot;
-- the other keys are reached from W inside the script.
--
-- A seed's level is its JSON field "priority" (absent: 0).  Seed.to_json writes it
-- right after "v", so it is read by an anchored match; a seed written otherwise (by
-- another program) is decoded only when the text "priority" occurs in it at all.
--
--   enqueue(W, raw, at_head)       push one seed to the tail (or head) of its level; returns the level
--   enqueue_all(W, raws, at_head)  push a list of seeds; at the head, raws[1] ends first (order kept)
--   dequeue(W, n)                  pop up to n seeds: highest level first, FIFO within a level;
--                                  emptied levels are dropped from W:levels
--   queue_length(W)                seeds waiting at every level
--   queue_clear(W)                 delete every level; returns how many seeds went

local QUEUE_MAX_LEVEL = 2147483647     -- as in seed.py: a priority is a 32-bit integer
local QUEUE_CHUNK = 2000               -- values per push command (unpack stays small)

local function seed_priority(raw)
  local found = string.match(raw, '^{"v":%d+,"priority":(%-?%d+)[,}]')
  local level = tonumber(found)
  if not found then
    if not string.find(raw, '"priority"', 1, true) then return 0 end
    local ok, obj = pcall(cjson.decode, raw)
    level = ok and type(obj) == 'table' and obj['priority']
    if type(level) ~= 'number' or level ~= math.floor(level) then return 0 end
  end
  if level > QUEUE_MAX_LEVEL or level < -QUEUE_MAX_LEVEL - 1 then return 0 end
  return level
end

local function queue_levels_key(work)
  return work .. ':levels'
end

local function queue_level_key(work, level)
  if level == 0 then return work end
  return work .. ':' .. string.format('%d', level)
end

local function queue_push(key, values, at_head)
  local command = at_head and 'LPUSH' or 'RPUSH'
  for i = 1, #values, QUEUE_CHUNK do
    redis.call(command, key, unpack(values, i, math.min(i + QUEUE_CHUNK - 1, #values)))
  end
end

local function enqueue_all(work, raws, at_head)
  local groups, first, last, step = {}, 1, #raws, 1
  if at_head then first, last, step = #raws, 1, -1 end  -- LPUSH reverses: feed it the last first
  for i = first, last, step do
    local level = seed_priority(raws[i])
    local group = groups[level]
    if not group then group = {}; groups[level] = group end
    group[#group + 1] = raws[i]
  end
  for level, group in pairs(groups) do
    if level ~= 0 then  -- recorded before the push, so a level never holds seeds unrecorded
      redis.call('ZADD', queue_levels_key(work), level, string.format('%d', level))
    end
    queue_push(queue_level_key(work, level), group, at_head)
  end
  return #raws
end

local function enqueue(work, raw, at_head)
  local level = seed_priority(raw)
  if level ~= 0 then
    redis.call('ZADD', queue_levels_key(work), level, string.format('%d', level))
  end
  redis.call(at_head and 'LPUSH' or 'RPUSH', queue_level_key(work, level), raw)
  return level
end

local function dequeue(work, n)
  local taken, levels = {}, queue_levels_key(work)
  n = tonumber(n)
  while #taken < n do
    local top = redis.call('ZREVRANGE', levels, 0, 0)[1]   -- the highest non-zero level
    local items = false
    if not top or tonumber(top) < 0 then
      items = redis.call('LPOP', work, n - #taken)
    end
    if not items then
      if not top then break end
      local key = work .. ':' .. top
      items = redis.call('LPOP', key, n - #taken)
      if redis.call('EXISTS', key) == 0 then redis.call('ZREM', levels, top) end
    end
    if items then
      for i = 1, #items do taken[#taken + 1] = items[i] end
    end
  end
  return taken
end

local function queue_length(work)
  local n = redis.call('LLEN', work)
  for _, level in ipairs(redis.call('ZRANGE', queue_levels_key(work), 0, -1)) do
    n = n + redis.call('LLEN', work .. ':' .. level)
  end
  return n
end

local function queue_clear(work)
  local n = queue_length(work)
  for _, level in ipairs(redis.call('ZRANGE', queue_levels_key(work), 0, -1)) do
    redis.call('UNLINK', work .. ':' .. level)
  end
  redis.call('UNLINK', work, queue_levels_key(work))
  return n
end
