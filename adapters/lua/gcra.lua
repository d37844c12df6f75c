-- Generic cell rate algorithm (GCRA): one key per bucket, holding the theoretical
-- arrival time (TAT) in microseconds of Redis server time, so every gateway instance
-- shares one clock and one budget.
--
-- KEYS[1]  bucket key
-- ARGV[1]  limit: requests allowed per period
-- ARGV[2]  period in milliseconds
-- ARGV[3]  burst: requests that may go back to back (1 = evenly spaced)
-- ARGV[4]  mode: "deny" refuses when over the limit (reseller limits);
--          "reserve" always takes the next free slot and returns how long to wait
--          (client-side upstream limits: callers queue instead of failing)
-- ARGV[5]  cost (requests to account for; normally 1)
-- ARGV[6]  reserve mode only, optional: the longest wait in microseconds a caller accepts;
--          a later slot is not taken (the answer is a refusal saying how long the wait
--          would be), so a queue can never grow past what its callers will wait for
--
-- Returns {allowed (0/1), remaining, wait_us, reset_us}
--   wait_us  how long until this request may be sent (reserve) / retried (deny)
--   reset_us how long until the bucket is completely full again
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period_us = tonumber(ARGV[2]) * 1000
local burst = tonumber(ARGV[3])
local mode = ARGV[4]
local cost = tonumber(ARGV[5])
local max_wait = tonumber(ARGV[6] or '-1')

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = period_us / limit
local tolerance = interval * (burst - 1)

local tat = tonumber(redis.call('GET', key))
if tat == nil or tat < now then
  tat = now
end

local new_tat = tat + interval * cost
local allow_at = new_tat - interval - tolerance
local wait = allow_at - now

if wait > 0 and (mode == 'deny' or (max_wait >= 0 and wait > max_wait)) then
  local remaining = math.floor((now + tolerance - tat) / interval)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, math.ceil(wait), math.ceil(tat - now)}
end

if wait < 0 then wait = 0 end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ttl_ms)
local remaining = math.floor((now + tolerance - new_tat) / interval) + 1
if remaining < 0 then remaining = 0 end
return {1, remaining, math.ceil(wait), math.ceil(new_tat - now)}
