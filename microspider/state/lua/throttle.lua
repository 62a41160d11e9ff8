-- Cool-downs of throttled hosts, shared by every process: check, throttle, recover.
--
-- KEYS[1]  zset "HOST|PROXY" -> end of the host's cool-down (server time, ms)
-- KEYS[2]  hash "HOST|PROXY" -> last doubling step (ms) of a host throttled without Retry-After
-- ARGV[1]  'check' | 'throttle' | 'recover'
-- ARGV[2]  the member "HOST|PROXY"
-- check    -> {ms left of its cool-down (0: none), 1 if it has a doubling step to reset}
-- throttle ARGV[3] Retry-After in ms (-1: none), ARGV[4] cap in ms (1000..60000 doubling without it)
--          -> ms of cool-down from now
-- recover  forgets the doubling step (a success)
--
-- The server's TIME is the only clock, so machines with skewed clocks agree.
if redis.replicate_commands then redis.replicate_commands() end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, member = ARGV[1], ARGV[2]

if op == 'check' then
  local ends = tonumber(redis.call('ZSCORE', KEYS[1], member)) or 0
  local left = math.max(0, ends - now)
  local step = redis.call('HEXISTS', KEYS[2], member)
  return {left, step}
end

if op == 'recover' then
  return redis.call('HDEL', KEYS[2], member)
end

-- throttle
local ends = tonumber(redis.call('ZSCORE', KEYS[1], member)) or 0
local retry_after = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local new_end
if retry_after >= 0 then
  new_end = math.max(ends, now + math.min(retry_after, cap))
elseif ends > now then
  -- an answer to a request sent before the cool-down began: no doubling, but the site may
  -- count its own window from this answer, so wait at least the current step from now
  local step = tonumber(redis.call('HGET', KEYS[2], member)) or 1000
  new_end = math.max(ends, now + step)
else
  local step = tonumber(redis.call('HGET', KEYS[2], member))
  if step then step = math.min(step * 2, 60000) else step = 1000 end
  redis.call('HSET', KEYS[2], member, step)
  redis.call('PEXPIRE', KEYS[2], 3600000)
  new_end = now + step
end
redis.call('ZADD', KEYS[1], new_end, member)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], math.max(new_end - now, 0) + 3600000)
return new_end - now
