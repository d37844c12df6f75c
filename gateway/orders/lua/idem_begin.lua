-- Claim an Idempotency-Key for one request, or say why not. Atomic, so that of several
-- identical requests arriving at several instances at once exactly one proceeds.
--
-- KEYS[1]  the key's hash: token, fp (request fingerprint), state (in_flight | created |
--          done), lease (ms, Redis clock: the holder is presumed alive until then),
--          order_id, status, body
-- ARGV[1]  token of this request
-- ARGV[2]  fingerprint of this request
-- ARGV[3]  lease in milliseconds
--
-- Returns one of
--   {"acquired"}              this request holds the key; nothing was created yet
--   {"mismatch"}              the key was used with another request body (422)
--   {"busy"}                  another request holds the key and is alive (409)
--   {"done", status, body, order_id}  finished: replay the stored answer
--   {"takeover", order_id}    the order exists but its request died before answering:
--                             this request now holds the key and builds the answer
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])

if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'token', ARGV[1], 'fp', ARGV[2], 'state', 'in_flight',
             'lease', now + lease)
  -- Until an order exists the key lives only as long as the lease: a request that died
  -- before creating anything leaves nothing behind.
  redis.call('PEXPIRE', KEYS[1], lease)
  return {'acquired'}
end

local h = redis.call('HMGET', KEYS[1], 'fp', 'state', 'lease', 'order_id', 'status', 'body')
if h[1] ~= ARGV[2] then
  return {'mismatch'}
end
if h[2] == 'done' then
  return {'done', h[5], h[6], h[4]}
end
if (tonumber(h[3]) or 0) > now then
  return {'busy'}
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'lease', now + lease)
if h[2] == 'created' then
  return {'takeover', h[4]}
end
redis.call('PEXPIRE', KEYS[1], lease)
return {'acquired'}
