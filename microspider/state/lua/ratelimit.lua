-- Token bucket shared by every process: reserve ARGV[3] tokens, return the wait.
--
-- KEYS[1]  hash {tokens, ts}: tokens left (may be negative = slots already
--          promised to callers that are waiting) and the server time (us) of
--          the last update.
-- ARGV[1]  rate, tokens per second (may be fractional)
-- ARGV[2]  burst, the bucket's capacity
-- ARGV[3]  n, tokens to reserve
-- Returns  the seconds the caller must wait before using its tokens, as a
--          string (a Lua number would be truncated to an integer reply).
--
-- The server's TIME is the only clock, so machines with skewed clocks agree.
-- Redis >= 5 replicates scripts by their effects, which makes TIME legal
-- before a write; the call below keeps Redis 3.2/4 working too.
if redis.replicate_commands then redis.replicate_commands() end

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then
    tokens = math.min(burst, tokens + (now - ts) / 1000000 * rate)
end
tokens = tokens - n

redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens),
           'ts', string.format('%.0f', now))
-- An idle bucket refills to `burst` and then means nothing: let it expire.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)

local wait = 0
if tokens < 0 then wait = -tokens / rate end
return string.format('%.6f', wait)
