"""The Lua scripts of the gateway; each touches the keys of one spider only (one cluster slot)."""

# KEYS: work, inflight. ARGV: n. Returns the seeds taken (oldest first).
TAKE = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
for i = 1, #items, 2000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 1999, #items)))
end
return items
"""

# KEYS: inflight, work. Puts the in-flight seeds back at the head of work, in order.
REQUEUE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1])
return #items
"""

# KEYS: inflight, work. ARGV: the seeds the worker holds. Requeues any other in-flight seed
# (taken by a call whose reply was lost).
REQUEUE_UNHELD = """
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
    redis.call('LPUSH', KEYS[2], raw)
    moved = moved + 1
  end
end
return moved
"""

# KEYS: workers, work. ARGV: now, inflight key prefix. Requeues the seeds of expired workers.
RECLAIM = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local moved = 0
for _, w in ipairs(dead) do
  local k = ARGV[2] .. w
  local items = redis.call('LRANGE', k, 0, -1)
  for i = #items, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
  moved = moved + #items
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], w)
end
return moved
"""


# KEYS: alerted key. ARGV: now, quiet seconds, expiry. 1 if this alert may go out now.
ALERT_ONCE = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""
