-- Post a top-up or an adjustment to an account, once per operator reference: the same
-- reference again with the same kind, currency and amount answers the first entry;
-- with anything else it is refused. Creates the account if needed.
--
-- KEYS[1] account hash   KEYS[2] ledger stream   KEYS[3] reseller's references hash
-- KEYS[4] reseller's currencies set   KEYS[5] account events hash   KEYS[6] job stream
-- ARGV[1] kind (topup | adjustment)   ARGV[2] signed amount   ARGV[3] reference
-- ARGV[4] note   ARGV[5] currency   ARGV[6] reseller id   ARGV[7] job nonce
-- Returns {'ok', entry id, balance} | {'replayed', entry id, balance}
--       | {'conflict', stored "kind|currency|amount|entry"}
local kind, amount, ref = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local said = kind .. '|' .. ARGV[5] .. '|' .. ARGV[2]
local seen = redis.call('HGET', KEYS[3], ref)
if seen then
  if string.sub(seen, 1, #said + 1) == said .. '|' then
    return {'replayed', string.sub(seen, #said + 2), redis.call('HGET', KEYS[1], 'balance')}
  end
  return {'conflict', seen}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'balance', '0', 'held', '0', 'limit', '0')
end
redis.call('SADD', KEYS[4], ARGV[5])
local a = acct_load(KEYS[1])
a.balance = redis.call('HINCRBY', KEYS[1], 'balance', ARGV[2])
local id = acct_entry(KEYS[2], kind, math.abs(amount), amount, 0, a, '', '', ref, ARGV[4])
redis.call('HSET', KEYS[3], ref, said .. '|' .. id)
acct_low(KEYS[1], a, KEYS[5], KEYS[6], ARGV[6], ARGV[5], ARGV[7], id)
return {'ok', id, acct_int(a.balance)}
