-- Create an order: its record, the reseller's indexes, the Idempotency-Key's link to it
-- and its first jobs, in one step. Nothing is sent upstream before this has run, and
-- the jobs cannot exist without the order nor the order without its jobs.
--
-- KEYS[1]  order hash {doc, v}
-- KEYS[2]  job stream
-- KEYS[3]  reseller's index (all orders)
-- KEYS[4]  reseller's index for the initial status
-- KEYS[5]  Idempotency-Key hash
-- ARGV[1]  token of the request holding the key
-- ARGV[2]  order document (JSON)
-- ARGV[3]  order id
-- ARGV[4]  creation time, ms (index score)
-- ARGV[5]  Idempotency-Key retention, seconds
-- ARGV[6..] job entries to add to the stream
-- Returns "ok", "lost" (the key was taken over: another request is answering) or "exists".
if redis.call('HGET', KEYS[5], 'token') ~= ARGV[1] then
  return 'lost'
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'exists'
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'v', 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
redis.call('HSET', KEYS[5], 'state', 'created', 'order_id', ARGV[3])
redis.call('EXPIRE', KEYS[5], ARGV[5])
for i = 6, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'j', ARGV[i])
end
return 'ok'
