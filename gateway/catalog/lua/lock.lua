-- The per-supplier sync lock, with fencing tokens.
--
-- KEYS[1]  lock key (holds the holder's token; expires by itself)
-- KEYS[2]  fence counter (INCR issues tokens)
-- KEYS[3]  current snapshot version (tokens must stay above it, see below)
-- ARGV[1]  op: "acquire" | "renew" | "release"
-- ARGV[2]  acquire: lock lifetime in ms; renew/release: the holder's token
-- ARGV[3]  renew: lock lifetime in ms
--
-- acquire -> the new token, or false when somebody holds the lock
-- renew   -> 1 if the caller still holds the lock (its expiry is pushed back), else 0
-- release -> 1 if the caller held the lock (now deleted), else 0
--
-- Published versions are tokens, and publishing requires a token above the current
-- version. Should the counter ever be lost (a flushed or restored Redis) while a version
-- survives, a token at or below that version could never publish again; so a new token
-- is always lifted above the current version.
local op = ARGV[1]
if op == 'acquire' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
  end
  local token = redis.call('INCR', KEYS[2])
  local current = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if token <= current then
    token = current + 1
    redis.call('SET', KEYS[2], token)
  end
  redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
  return token
elseif op == 'renew' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
elseif op == 'release' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
return redis.error_reply('lock.lua: unknown op ' .. tostring(op))
