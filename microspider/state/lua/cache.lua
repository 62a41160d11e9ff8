-- The success cache of one spider (see cache.py for the design): buckets are small
-- hashes {fingerprint tail: success minute - epoch} addressed by linear hashing on the
-- fingerprint's leading bits, plus "split marks" for the rare bucket split early.
--
-- KEYS[1]  meta hash {level, split, n, epoch}: the linear-hashing level and split
--          pointer, how many fingerprints the buckets hold, minute 0 of the values
-- KEYS[2]  split marks hash {node id (hex): 1}: buckets split ahead of the pointer
-- KEYS[3]  the 0.1 cache, a set of 12-byte fingerprints (read and drained while it exists)
-- ARGV[1]  the operation: add, adopt, contains, remove, due
-- ARGV[2]  the bucket key prefix (a bucket is prefix .. hex node id)
-- The rest of ARGV depends on the operation (see each branch).
--
-- A node is (depth d, p = the d leading bits of the fingerprint); its id is 2^d + p.
-- A bucket of depth d stores the fingerprint without its floor(d/8) leading bytes,
-- which its node id implies.  Every operation is one script, so a check never sees
-- a bucket half split.
local meta, marks, legacy = KEYS[1], KEYS[2], KEYS[3]
local op, prefix = ARGV[1], ARGV[2]
local floor = math.floor
local MAX_DEPTH = 48

local state = redis.call('HMGET', meta, 'level', 'split', 'n', 'epoch')
local level = tonumber(state[1]) or 0
local split = tonumber(state[2]) or 0
local count = tonumber(state[3]) or 0
local epoch = tonumber(state[4])
local marked = redis.call('EXISTS', marks) == 1
local has_legacy = redis.call('EXISTS', legacy) == 1

local function lead(k)  -- the 48 leading bits of a fingerprint, as a number
  local b1, b2, b3, b4, b5, b6 = string.byte(k, 1, 6)
  return ((((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6
end

local function id(d, p) return string.format('%x', 2 ^ d + p) end
local function bucket(d, p) return prefix .. id(d, p) end
local function tail(k, d) return string.sub(k, floor(d / 8) + 1) end

local function leaf(h)  -- the node that holds fingerprint h: linear address, then marks
  local d = level
  local p = floor(h / 2 ^ (MAX_DEPTH - d))
  if p < split then
    d = d + 1
    p = floor(h / 2 ^ (MAX_DEPTH - d))
  end
  if marked then
    while d < MAX_DEPTH and redis.call('HEXISTS', marks, id(d, p)) == 1 do
      d = d + 1
      p = floor(h / 2 ^ (MAX_DEPTH - d))
    end
  end
  return d, p
end

local function split_node(d, p)  -- move a bucket's entries into its two children
  local from = bucket(d, p)
  local all = redis.call('HGETALL', from)
  if #all == 0 then return end
  local cut = floor((d + 1) / 8) - floor(d / 8)   -- one more leading byte implied, or none
  local shift = 2 ^ (7 - d % 8)                   -- the bit that picks the child
  local kids = {{}, {}}
  for i = 1, #all, 2 do
    local f = all[i]
    local t = kids[floor(string.byte(f, 1) / shift) % 2 + 1]
    t[#t + 1] = string.sub(f, 1 + cut)
    t[#t + 1] = all[i + 1]
  end
  for bit = 0, 1 do
    local t = kids[bit + 1]
    for i = 1, #t, 1000 do
      redis.call('HSET', bucket(d + 1, 2 * p + bit), unpack(t, i, math.min(i + 999, #t)))
    end
  end
  redis.call('DEL', from)
end

local function grow()  -- split the bucket under the pointer (or adopt its early split)
  if redis.call('HDEL', marks, id(level, split)) == 0 then split_node(level, split) end
  split = split + 1
  if split == 2 ^ level then
    level = level + 1
    split = 0
  end
end

local function insert(k, minute, limit)  -- 1 if k is new to the buckets
  if not epoch then
    epoch = minute
    redis.call('HSET', meta, 'epoch', epoch)
  end
  local h = lead(k)
  local d, p = leaf(h)
  local b, f = bucket(d, p), tail(k, d)
  -- a full bucket splits now, so none ever leaves the compact encoding; with the mean
  -- fill kept far below the limit this is rare (a skewed or hostile set of URLs)
  while d < MAX_DEPTH and redis.call('HLEN', b) >= limit and redis.call('HEXISTS', b, f) == 0 do
    redis.call('HSET', marks, id(d, p), 1)
    marked = true
    split_node(d, p)
    d = d + 1
    p = floor(h / 2 ^ (MAX_DEPTH - d))
    b, f = bucket(d, p), tail(k, d)
  end
  return redis.call('HSET', b, f, minute - epoch)
end

local function settle(target)  -- grow until the mean fill is back under target; save
  while count > target * (2 ^ level + split) do grow() end
  redis.call('HSET', meta, 'level', level, 'split', split, 'n', count)
end

if op == 'add' then
  -- ARGV[3] entries limit, ARGV[4] target mean fill, then fingerprint, minute pairs
  local limit, target = tonumber(ARGV[3]), tonumber(ARGV[4])
  local added = 0
  for i = 5, #ARGV, 2 do
    local k = ARGV[i]
    added = added + insert(k, tonumber(ARGV[i + 1]), limit)
    if has_legacy then redis.call('SREM', legacy, k) end
  end
  count = count + added
  settle(target)
  return added

elseif op == 'adopt' then
  -- the 0.1 set into the buckets: ARGV[3] limit, ARGV[4] target, ARGV[5] minute, members
  local limit, target, minute = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local moved = 0
  for i = 6, #ARGV do
    local k = ARGV[i]
    if redis.call('SREM', legacy, k) == 1 and #k == 12 then
      count = count + insert(k, minute, limit)
      moved = moved + 1
    end
  end
  settle(target)
  return moved

elseif op == 'contains' then
  -- ARGV[3] the oldest success minute that still counts ('' = any), then fingerprints
  local since = tonumber(ARGV[3])
  local out = {}
  for i = 4, #ARGV do
    local k = ARGV[i]
    local hit = 0
    local v = nil
    if epoch then
      local d, p = leaf(lead(k))
      v = redis.call('HGET', bucket(d, p), tail(k, d))
      if v and (not since or tonumber(v) + epoch >= since) then hit = 1 end
    end
    -- a 0.1 entry has no time: it counts as fresh (it is adopted with the adoption time)
    if not v and has_legacy then hit = redis.call('SISMEMBER', legacy, k) end
    out[#out + 1] = hit
  end
  return out

elseif op == 'remove' then
  -- fingerprints in ARGV[3..]; returns how many were cached
  local removed, dropped = 0, 0
  for i = 3, #ARGV do
    local k = ARGV[i]
    if epoch then
      local d, p = leaf(lead(k))
      removed = removed + redis.call('HDEL', bucket(d, p), tail(k, d))
    end
    if has_legacy then dropped = dropped + redis.call('SREM', legacy, k) end
  end
  if removed > 0 then redis.call('HSET', meta, 'n', count - removed) end
  return removed + dropped

elseif op == 'due' then
  -- sample: ARGV[3] the oldest minute that counts, then 48-bit positions; returns
  -- {entries seen, of which older} over the distinct buckets those positions fall in
  local since = tonumber(ARGV[3])
  local seen, total, old = {}, 0, 0
  if not epoch then return {0, 0} end
  for i = 4, #ARGV do
    local d, p = leaf(tonumber(ARGV[i]))
    local b = bucket(d, p)
    if not seen[b] then
      seen[b] = true
      for _, v in ipairs(redis.call('HVALS', b)) do
        total = total + 1
        if tonumber(v) + epoch < since then old = old + 1 end
      end
    end
  end
  return {total, old}
end
return redis.error_reply('unknown cache operation ' .. tostring(op))
