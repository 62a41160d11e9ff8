"""The Lua scripts of the gateway; each touches the keys of one spider only (one cluster slot).

Those that read or write the work queue start with its library (``queue.py``, ``lua/queue.lua``).
"""
from .queue import with_library

# KEYS: work, inflight. ARGV: n. Returns the seeds taken: highest priority first, oldest first
# within one priority.
TAKE = with_library("""
local items = dequeue(KEYS[1], ARGV[1])
for i = 1, #items, 2000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 1999, #items)))
end
return items
""")

# KEYS: inflight, work. Puts the in-flight seeds back at the head of their levels, in order.
REQUEUE = with_library("""
local items = redis.call('LRANGE', KEYS[1], 0, -1)
enqueue_all(KEYS[2], items, true)
redis.call('DEL', KEYS[1])
return #items
""")

# KEYS: inflight, work. ARGV: the seeds the worker holds. Requeues any other in-flight seed
# (taken by a call whose reply was lost) at the head of its level.
REQUEUE_UNHELD = with_library("""
local held = {}
for i = 1, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local moved = 0
for i = #items, 1, -1 do
  local raw = items[i]
  if (held[raw] or 0) > 0 then
    held[raw] = held[raw] - 1
  else
    redis.call('LREM', KEYS[1], 1, raw)
    enqueue(KEYS[2], raw, true)
    moved = moved + 1
  end
end
return moved
""")

# KEYS: workers, work. ARGV: now, inflight key prefix. Requeues the seeds of expired workers
# at the head of their levels, in order.
RECLAIM = with_library("""
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local moved = 0
for _, w in ipairs(dead) do
  local k = ARGV[2] .. w
  moved = moved + enqueue_all(KEYS[2], redis.call('LRANGE', k, 0, -1), true)
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], w)
end
return moved
""")


# KEYS: alerted key. ARGV: now, quiet seconds, expiry. 1 if this alert may go out now.
ALERT_ONCE = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""


# KEYS: sessions, stats. ARGV: size, session key prefix, id to retire ("" none), then pairs of
# (new id, identity JSON). Retires one session (counted once, by whoever removed it), adds new
# ones while fewer than `size` are live, returns {retired 0/1, the live hash as a flat list}.
SESSIONS_SYNC = """
local retired = 0
if ARGV[3] ~= '' and redis.call('HDEL', KEYS[1], ARGV[3]) == 1 then
  redis.call('DEL', ARGV[2] .. ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'sessions_retired', 1)
  retired = 1
end
local size = tonumber(ARGV[1])
for i = 4, #ARGV - 1, 2 do
  if redis.call('HLEN', KEYS[1]) >= size then break end
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return {retired, redis.call('HGETALL', KEYS[1])}
"""

# KEYS: sessions, session. ARGV: id, block, max uses. Reserves up to `block` uses of a live
# session; returns {uses granted, uses reserved before, the session hash as a flat list}, or
# nil when the session is retired (HINCRBY must not bring its hash back).
SESSION_RESERVE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
local block = tonumber(ARGV[2])
local after = redis.call('HINCRBY', KEYS[2], 'uses', block)
local before = after - block
local granted = math.max(0, math.min(block, tonumber(ARGV[3]) - before))
return {granted, before, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: sessions, session. ARGV: id, warmed (1: the session earned its first cookies; said in
# its hash and in its identity, which every process re-reads), then pairs (cookie field, value;
# "" deletes). Writes to a live session only.
SESSION_COOKIES = """
local identity = redis.call('HGET', KEYS[1], ARGV[1])
if not identity then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[2], 'warmed', 1)
  local decoded = cjson.decode(identity)
  decoded['warmed'] = true
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(decoded))
end
for i = 3, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[i])
  else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1
"""
