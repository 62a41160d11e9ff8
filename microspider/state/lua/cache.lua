-- The frontier of one spider (see cache.py for the design): every URL it ever
-- queued, one entry per fingerprint in small hashes {fingerprint tail: state}
-- addressed by linear hashing on the fingerprint's leading bits, plus "split marks"
-- for the rare bucket split early.  A state is the success time (a 16-bit integer:
-- done) or SEEN ("q": queued, in flight, in the backlog or stored as a failure).
--
-- KEYS[1]  meta hash {level, split, n, seen, recrawl, nocache}: the linear-hashing
--          level and split pointer, how many fingerprints the buckets hold, how many
--          of them are SEEN, and the spider's run settings the admission reads
-- KEYS[2]  split marks hash {node id (hex): 1}: buckets split ahead of the pointer
-- KEYS[3]  the 0.1 cache, a set of 12-byte fingerprints (read and drained while it exists)
-- ARGV[1]  the operation: add, adopt, contains, remove, due, admit, see, unsee
-- ARGV[2]  the bucket key prefix (a bucket is prefix .. hex node id)
-- The rest of ARGV depends on the operation (see each branch).
-- cache.py runs it after lua/queue.lua (the work queue's library: admit's enqueue_all).
--
-- A node is (depth d, p = the d leading bits of the fingerprint); its id is 2^d + p.
-- A bucket of depth d stores the fingerprint without its floor(d/8) leading bytes,
-- which its node id implies.  Every operation is one script, so a check never sees
-- a bucket half split.
--
-- Success times are 16-bit integers (4 bytes in the compact encodings) relative to
-- the bucket's own epoch E, a minute kept in the bucket's field "": within FINE
-- minutes before or after E to the minute, further back in hours (about 1.9 years),
-- older still "ancient".  A value stands for the earliest minute it may mean, so a
-- success is never taken for younger than it is.  When a success comes past E + FINE
-- the bucket moves its epoch forward and re-encodes its values (every two weeks or so
-- for a bucket that keeps being written).
local meta, marks, legacy = KEYS[1], KEYS[2], KEYS[3]
local op, prefix = ARGV[1], ARGV[2]
local floor = math.floor
local MAX_DEPTH = 48

local FINE = 16384          -- minutes each side of a bucket's epoch kept to the minute
local AHEAD = 8192          -- a new epoch is this far ahead of the success that moves it
local ANCIENT = -32768
local SEEN = 'q'            -- the state of a fingerprint not (yet) done

local state = redis.call('HMGET', meta, 'level', 'split', 'n', 'seen')
local level = tonumber(state[1]) or 0
local split = tonumber(state[2]) or 0
local count = tonumber(state[3]) or 0
local seen = tonumber(state[4]) or 0
local marked = redis.call('EXISTS', marks) == 1
local has_legacy = redis.call('EXISTS', legacy) == 1

local function lead(k)  -- the 48 leading bits of a fingerprint, as a number
  local b1, b2, b3, b4, b5, b6 = string.byte(k, 1, 6)
  return ((((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6
end

local function encode(a)  -- minutes relative to the epoch (a < FINE) -> 16-bit value
  if a >= -FINE then return a end
  local v = -FINE - math.ceil((-FINE - a) / 60)   -- hours, rounded towards older
  if v <= ANCIENT then return ANCIENT end
  return v
end

local function decode(v)  -- 16-bit value -> earliest minute relative to the epoch; nil: ancient
  v = tonumber(v)
  if v >= -FINE then return v end
  if v <= ANCIENT then return nil end
  return -FINE - (-FINE - v) * 60
end

local function fresh(v, epoch, since)  -- is a success stored as v in a bucket of epoch E fresh?
  if v == SEEN then return false end
  if not since then return true end
  local m = decode(v)
  return m ~= nil and m + tonumber(epoch) >= since
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
    if f == '' then    -- the epoch goes to both children
      for bit = 1, 2 do
        kids[bit][#kids[bit] + 1] = ''
        kids[bit][#kids[bit] + 1] = all[i + 1]
      end
    else
      local t = kids[floor(string.byte(f, 1) / shift) % 2 + 1]
      t[#t + 1] = string.sub(f, 1 + cut)
      t[#t + 1] = all[i + 1]
    end
  end
  for bit = 0, 1 do
    local t = kids[bit + 1]
    if #t == 2 then t = {} end   -- only the epoch: no bucket
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

local function rebase(b, minute)  -- move bucket b's epoch to just ahead of minute
  local all = redis.call('HGETALL', b)
  local old, new = nil, minute + AHEAD
  for i = 1, #all, 2 do
    if all[i] == '' then old = tonumber(all[i + 1]) end
  end
  local out = {'', new}
  for i = 1, #all, 2 do
    if all[i] ~= '' then
      local v = all[i + 1]
      out[#out + 1] = all[i]
      if v == SEEN then
        out[#out + 1] = v
      else
        local m = old and decode(v)
        out[#out + 1] = m and encode(m + old - new) or ANCIENT
      end
    end
  end
  for i = 1, #out, 1000 do
    redis.call('HSET', b, unpack(out, i, math.min(i + 999, #out)))
  end
  return new
end

local function locate(k, limit)  -- the bucket and field of fingerprint k, room made for it
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
  return b, f
end

local function forgot(old)  -- keep the counts when an entry in state `old` goes
  if old then
    count = count - 1
    if old == SEEN then seen = seen - 1 end
  end
end

local function insert(k, minute, limit)  -- k done at minute; 1 if k is new to the buckets
  local b, f = locate(k, limit)
  local epoch = tonumber(redis.call('HGET', b, ''))
  if not epoch or minute - epoch >= FINE then epoch = rebase(b, minute) end
  local old = redis.call('HGET', b, f)
  redis.call('HSET', b, f, encode(minute - epoch))
  if old == SEEN then seen = seen - 1 end
  if old then return 0 end
  count = count + 1
  return 1
end

local function see(k, limit)  -- k queued (or queued again): its state becomes SEEN
  local b, f = locate(k, limit)
  local old = redis.call('HGET', b, f)
  if old == SEEN then return end
  if redis.call('HEXISTS', b, '') == 0 then redis.call('HSET', b, '', 0) end   -- every bucket has an epoch
  redis.call('HSET', b, f, SEEN)
  if not old then count = count + 1 end
  seen = seen + 1
  if has_legacy then redis.call('SREM', legacy, k) end   -- a 0.1 success it was: not done now
end

local function state_of(k)  -- (value or nil, bucket epoch) of fingerprint k, no write
  local d, p = leaf(lead(k))
  local found = redis.call('HMGET', bucket(d, p), tail(k, d), '')
  return found[1], found[2]
end

local function settle(target)  -- grow until the mean fill is back under target; save
  while count > target * (2 ^ level + split) do grow() end
  redis.call('HSET', meta, 'level', level, 'split', split, 'n', count, 'seen', seen)
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
  settle(target)
  return added

elseif op == 'adopt' then
  -- the 0.1 set into the buckets: ARGV[3] limit, ARGV[4] target, ARGV[5] minute, members
  local limit, target, minute = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local moved = 0
  for i = 6, #ARGV do
    local k = ARGV[i]
    if redis.call('SREM', legacy, k) == 1 and #k == 12 then
      insert(k, minute, limit)
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
    local v, epoch = state_of(k)
    if v and fresh(v, epoch, since) then hit = 1 end
    -- a 0.1 entry has no time: it counts as fresh (it is adopted with the adoption time)
    if not v and has_legacy then hit = redis.call('SISMEMBER', legacy, k) end
    out[#out + 1] = hit
  end
  return out

elseif op == 'remove' then
  -- fingerprints in ARGV[3..]; returns how many were cached
  -- fingerprints in ARGV[3..]; returns how many were cached (done)
  local removed, dropped, changed = 0, 0, false
  for i = 3, #ARGV do
    local k = ARGV[i]
    local d, p = leaf(lead(k))
    local b, f = bucket(d, p), tail(k, d)
    local old = redis.call('HGET', b, f)
    if old then
      redis.call('HDEL', b, f)
      forgot(old)
      changed = true
      if old ~= SEEN then removed = removed + 1 end
      if redis.call('HLEN', b) == 1 then redis.call('DEL', b) end   -- only its epoch left
    end
    if has_legacy then dropped = dropped + redis.call('SREM', legacy, k) end
  end
  if changed then redis.call('HSET', meta, 'n', count, 'seen', seen) end
  return removed + dropped

elseif op == 'due' then
  -- sample: ARGV[3] the oldest minute that counts, then 48-bit positions; returns
  -- {entries seen, of which older} over the distinct buckets those positions fall in
  local since = tonumber(ARGV[3])
  local seen, total, old = {}, 0, 0
  for i = 4, #ARGV do
    local d, p = leaf(tonumber(ARGV[i]))
    local b = bucket(d, p)
    if not seen[b] then
      seen[b] = true
      local all = redis.call('HGETALL', b)
      local epoch = nil
      for j = 1, #all, 2 do
        if all[j] == '' then epoch = all[j + 1] end
      end
      for j = 1, #all, 2 do
        if all[j] ~= '' and all[j + 1] ~= SEEN then
          total = total + 1
          if not fresh(all[j + 1], epoch, since) then old = old + 1 end
        end
      end
    end
  end
  return {total, old}

elseif op == 'admit' then
  -- Queue the seeds no state of the frontier already holds, count the others.
  -- ARGV[3] entries limit, ARGV[4] target mean fill, ARGV[5] now (epoch s),
  -- ARGV[6] the work queue, ARGV[7] the stats hash, ARGV[8] '1': force (queue
  -- every seed, done or not), ARGV[9] the work queue's db when it is not the
  -- frontier's ('' when they share one), ARGV[10] a recrawl (s) that overrides the
  -- spider's ('' = the spider's), then fingerprint, raw seed pairs.  A done seed is
  -- queued again only when its success is older than the spider's recrawl (meta),
  -- or at once under its --no-cache.  Returns {queued, duplicates}.
  local limit, target, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local work, stats, force = ARGV[6], ARGV[7], ARGV[8] == '1'
  local settings = redis.call('HMGET', meta, 'recrawl', 'nocache')
  local recrawl, nocache = tonumber(ARGV[10]) or tonumber(settings[1]), settings[2] == '1'
  local since = recrawl and math.ceil((now - recrawl) / 60)
  local queue, dups = {}, 0
  for i = 11, #ARGV, 2 do
    local k = ARGV[i]
    local v, epoch = state_of(k)
    local known
    if v == SEEN then known = not force
    elseif v then known = not force and not nocache and fresh(v, epoch, since)
    else known = not force and has_legacy and redis.call('SISMEMBER', legacy, k) == 1 end
    if known then
      dups = dups + 1
    else
      see(k, limit)
      queue[#queue + 1] = ARGV[i + 1]
    end
  end
  settle(target)
  if ARGV[9] ~= '' then redis.call('SELECT', ARGV[9]) end  -- -o and -c apart: one script still
  enqueue_all(work, queue, false)  -- each to its priority's list (lua/queue.lua, prepended)
  if dups > 0 then redis.call('HINCRBY', stats, 'duplicates', dups) end
  return {#queue, dups}

elseif op == 'see' then
  -- Mark the fingerprints in ARGV[5..] SEEN where the frontier has no state for them (their
  -- seeds were put in a queue by hand: migrate).  ARGV[3] limit, ARGV[4] target mean fill.
  local limit, target = tonumber(ARGV[3]), tonumber(ARGV[4])
  for i = 5, #ARGV do
    if not state_of(ARGV[i]) then see(ARGV[i], limit) end
  end
  settle(target)
  return seen

elseif op == 'unsee' then
  -- Forget the fingerprints in ARGV[3..] that are SEEN (their seeds left every queue:
  -- `clear -o`, `clear -b`); done ones stay.  Returns how many went.
  local gone = 0
  for i = 3, #ARGV do
    local k = ARGV[i]
    local d, p = leaf(lead(k))
    local b, f = bucket(d, p), tail(k, d)
    if redis.call('HGET', b, f) == SEEN then
      redis.call('HDEL', b, f)
      forgot(SEEN)
      gone = gone + 1
      if redis.call('HLEN', b) == 1 then redis.call('DEL', b) end
    end
  end
  if gone > 0 then redis.call('HSET', meta, 'n', count, 'seen', seen) end
  return gone
end
return redis.error_reply('unknown cache operation ' .. tostring(op))
