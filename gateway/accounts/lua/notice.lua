-- Record one delivery attempt of a low-balance event, acknowledging its job in the same
-- step, if the job is still the event's live one (compare-and-set on the job nonce; a
-- stale job is only acknowledged). Delivered or given up: the event is removed.
-- Otherwise the retry job is scheduled.
--
-- KEYS[1] account events hash   KEYS[2] job stream   KEYS[3] schedule
-- ARGV[1] event id   ARGV[2] the job's nonce   ARGV[3] stream entry to acknowledge
-- ARGV[4] consumer group   ARGV[5] '' (done) or the retry job entry   ARGV[6] its nonce
-- ARGV[7] retry delay, ms
-- Returns 1 when recorded, 0 when the job was stale.
redis.call('XACK', KEYS[2], ARGV[4], ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
if redis.call('HGET', KEYS[1], ARGV[1] .. ':job') ~= ARGV[2] then
  return 0
end
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1], ARGV[1] .. ':job', ARGV[1] .. ':attempts')
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1] .. ':job', ARGV[6])
redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':attempts', 1)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[5])
return 1
