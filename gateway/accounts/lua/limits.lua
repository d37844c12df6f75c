-- Set an account's credit limit, caps and low-balance threshold (creating the account if
-- needed). A field given as '' is removed (no cap); a field not given ('-') is kept. A
-- change that leaves available below the threshold is a crossing like any other.
--
-- KEYS[1] account hash   KEYS[2] reseller's currencies set   KEYS[3] account events hash
-- KEYS[4] job stream
-- ARGV[1] limit   ARGV[2] order_cap   ARGV[3] day_cap   ARGV[4] low_threshold
-- ARGV[5] currency   ARGV[6] reseller id   ARGV[7] job nonce
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'balance', '0', 'held', '0', 'limit', '0')
end
redis.call('SADD', KEYS[2], ARGV[5])
local names = {'limit', 'order_cap', 'day_cap', 'low_threshold'}
for i, name in ipairs(names) do
  local value = ARGV[i]
  if value == '' then
    redis.call('HDEL', KEYS[1], name)
  elseif value ~= '-' then
    redis.call('HSET', KEYS[1], name, value)
  end
end
if redis.call('HEXISTS', KEYS[1], 'limit') == 0 then
  redis.call('HSET', KEYS[1], 'limit', '0')
end
local a = acct_load(KEYS[1])
local t = redis.call('TIME')
acct_low(KEYS[1], a, KEYS[3], KEYS[4], ARGV[6], ARGV[5], ARGV[7], 'limits-' .. t[1] .. t[2])
return 'ok'
