-- Store the answer of the request holding an Idempotency-Key, for replays.
--
-- KEYS[1]  the key's hash
-- ARGV[1]  token of the holder
-- ARGV[2]  HTTP status
-- ARGV[3]  body (encrypted: it may carry activation codes)
-- Returns 1 when stored, 0 when this request no longer holds the key.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
return 1
