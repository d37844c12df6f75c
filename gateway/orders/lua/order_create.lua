-- Create an order: its record, the reseller's indexes, the Idempotency-Key's link to it,
-- its first jobs and its holds on the reseller's accounts, in one step. Nothing is sent
-- upstream before this has run; the jobs cannot exist without the order, nor the order
-- without its holds, nor a hold without its order.
--
-- KEYS[1]  order hash {doc, v}
-- KEYS[2]  job stream
-- KEYS[3]  reseller's index (all orders)
-- KEYS[4]  reseller's index for the initial status
-- KEYS[5]  Idempotency-Key hash
-- KEYS[6]  open holds (ZSET), when ARGV[6] holds anything
-- KEYS[7..] per held currency: account hash, ledger stream, account events hash
-- ARGV[1]  token of the request holding the key
-- ARGV[2]  order document (JSON)
-- ARGV[3]  order id
-- ARGV[4]  creation time, ms (index score)
-- ARGV[5]  Idempotency-Key retention, seconds
-- ARGV[6]  holds (JSON) {r: reseller, d: UTC day, h: [[currency, amount, nonce]]}, or ''
-- ARGV[7..] job entries to add to the stream
-- Returns "ok", "lost" (the key was taken over: another request is answering), "exists",
-- or {"refused", code, currency, required, available | limit | remaining today}: an
-- account cannot cover the order, and nothing was written.
if redis.call('HGET', KEYS[5], 'token') ~= ARGV[1] then
  return 'lost'
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'exists'
end
local spec = nil
local accounts = {}
if ARGV[6] ~= '' then
  spec = cjson.decode(ARGV[6])
  for i, h in ipairs(spec.h) do
    local cur, amount = h[1], h[2]
    local a = acct_load(KEYS[4 + 3 * i])
    if a == nil then
      return {'refused', 'insufficient_funds', cur, acct_int(amount), '0'}
    end
    if a.order_cap and amount > a.order_cap then
      return {'refused', 'order_limit_exceeded', cur, acct_int(amount), acct_int(a.order_cap)}
    end
    local spent = 0
    if a.day == spec.d then
      spent = a.day_spent
    end
    if a.day_cap and spent + amount > a.day_cap then
      return {'refused', 'daily_limit_exceeded', cur, acct_int(amount),
              acct_int(math.max(0, a.day_cap - spent))}
    end
    local available = acct_available(a)
    if amount > available then
      return {'refused', 'insufficient_funds', cur, acct_int(amount), acct_int(available)}
    end
    accounts[i] = a
  end
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'v', 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
redis.call('HSET', KEYS[5], 'state', 'created', 'order_id', ARGV[3])
redis.call('EXPIRE', KEYS[5], ARGV[5])
for i = 7, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'j', ARGV[i])
end
if spec then
  for i, h in ipairs(spec.h) do
    local k = 4 + 3 * i
    local cur, amount, a = h[1], h[2], accounts[i]
    a.held = redis.call('HINCRBY', KEYS[k], 'held', acct_int(amount))
    if a.day == spec.d then
      redis.call('HINCRBY', KEYS[k], 'day_spent', acct_int(amount))
    else
      redis.call('HSET', KEYS[k], 'day', spec.d, 'day_spent', acct_int(amount))
    end
    local id = acct_entry(KEYS[k + 1], 'hold', amount, 0, amount, a, ARGV[3], '', '', '')
    redis.call('ZADD', KEYS[6], ARGV[4], ARGV[3] .. ':' .. cur)
    acct_low(KEYS[k], a, KEYS[k + 2], KEYS[2], spec.r, cur, h[3], id)
  end
end
return 'ok'
