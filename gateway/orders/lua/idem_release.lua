-- Give an Idempotency-Key back when the request failed before creating anything
-- (validation, price changed...): the same key may then be used again.
--
-- KEYS[1]  the key's hash
-- ARGV[1]  token of the holder
if redis.call('HGET', KEYS[1], 'token') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'in_flight' then
  return redis.call('DEL', KEYS[1])
end
return 0
