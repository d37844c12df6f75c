-- Move delayed jobs that are due from the schedule into the job stream, atomically: a job
-- is in exactly one of the two at any time, whichever worker runs this.
--
-- KEYS[1]  schedule (ZSET, due time in ms of the Redis clock)
-- KEYS[2]  job stream
-- ARGV[1]  most jobs to move in one call
-- Returns {moved, ms until the next due job or -1 when the schedule is empty}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, entry in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'j', entry)
  redis.call('ZREM', KEYS[1], entry)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #nxt > 0 then
  wait = tonumber(nxt[2]) - now
  if wait < 0 then wait = 0 end
end
return {#due, wait}
