-- Record a failed sync in the supplier's status, unless a newer snapshot was published
-- meanwhile (a stalled holder's late failure must not mark a fresh catalog stale).
--
-- KEYS[1]  current version pointer of the supplier
-- KEYS[2]  the supplier's status hash
-- ARGV[1]  the failed sync's fencing token
-- ARGV[2..] status fields and values to set, in pairs
--
-- Returns 1 when the status was written, 0 when a newer version made it moot.
local unpack = unpack or table.unpack
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if current >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
