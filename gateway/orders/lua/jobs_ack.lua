-- Acknowledge a job and drop its entry: the stream holds only work not yet done, so it
-- never needs trimming (trimming could drop a pending entry).
--
-- KEYS[1]  job stream
-- ARGV[1]  consumer group
-- ARGV[2..] entry ids
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return n
