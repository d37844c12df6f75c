-- Publish a staged snapshot version: the one atomic step readers switch on.
--
-- KEYS[1]  current version pointer of the supplier
-- KEYS[2]  sync lock of the supplier
-- KEYS[3]  the staged version's hash (becomes current)
-- KEYS[4]  the previous version's hash (expires after the grace period; any key of the
--          same slot when there is no previous version)
-- KEYS[5]  the supplier's status hash
-- ARGV[1]  the publisher's fencing token (= the new version number)
-- ARGV[2]  the version the publisher saw as current ('' for none)
-- ARGV[3]  grace period of the previous version, ms
-- ARGV[4..] status fields and values to set, in pairs
--
-- Returns {1, 'published', previous} or {0, reason, current}, reason one of:
--   'stale_token'  a version at or above this token is already published (fencing)
--   'lock_lost'    another holder owns the lock now (this one stalled past its expiry)
--   'moved'        current changed since the publisher read it: read again and retry
--   'missing'      the staged hash is gone (it expired: the sync took too long)
local unpack = unpack or table.unpack
local token = tonumber(ARGV[1])
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= token then
  return {0, 'stale_token', current}
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then
  return {0, 'lock_lost', current or ''}
end
if (current or '') ~= ARGV[2] then
  return {0, 'moved', current or ''}
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return {0, 'missing', current or ''}
end
redis.call('PERSIST', KEYS[3])
redis.call('SET', KEYS[1], ARGV[1])
if current and KEYS[4] ~= KEYS[3] then
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
if #ARGV > 3 then
  redis.call('HSET', KEYS[5], unpack(ARGV, 4))
end
return {1, 'published', current or ''}
