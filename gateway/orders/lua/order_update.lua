-- Commit a change of an order if nobody changed it since it was read (compare-and-set on
-- its version), together with everything that must happen with it: acknowledging the
-- job that made the change, enqueueing or scheduling the next jobs, the review set, the
-- status indexes, and announcing a final state.
--
-- KEYS[1]  order hash {doc, v}
-- KEYS[2]  job stream
-- KEYS[3]  schedule (ZSET, due time in ms of the Redis clock)
-- KEYS[4]  review set
-- KEYS[5]  reseller's index for the old status
-- KEYS[6]  reseller's index for the new status
-- KEYS[7]  open holds (ZSET), when effects carry account moves
-- KEYS[8..] per account move: account hash, ledger stream (move.k, move.k + 1)
-- ARGV[1]  expected version
-- ARGV[2]  new document (JSON)
-- ARGV[3]  order id
-- ARGV[4]  creation time, ms (index score)
-- ARGV[5]  effects (JSON): {ack, group, now: [entry], later: [[delay_ms, entry]],
--          review_add: [member], review_rem: [member], publish: channel,
--          accounts: [{k, c: currency, cap: capture, rel: release, o: order, p: part,
--                      d: UTC day of the hold, x: 1 when the order's hold is closed}]}
-- Returns the new version, or 0 when the order changed meanwhile (re-read and retry).
local v = redis.call('HGET', KEYS[1], 'v')
if v ~= ARGV[1] then
  return 0
end
local nv = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'v', nv)
if KEYS[5] ~= KEYS[6] then
  redis.call('ZREM', KEYS[5], ARGV[3])
  redis.call('ZADD', KEYS[6], ARGV[4], ARGV[3])
end
local e = cjson.decode(ARGV[5])
if e.ack then
  redis.call('XACK', KEYS[2], e.group, e.ack)
  redis.call('XDEL', KEYS[2], e.ack)
end
if e.now then
  for _, entry in ipairs(e.now) do
    redis.call('XADD', KEYS[2], '*', 'j', entry)
  end
end
if e.later then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for _, d in ipairs(e.later) do
    redis.call('ZADD', KEYS[3], now + tonumber(d[1]), d[2])
  end
end
if e.review_add then
  local t = redis.call('TIME')
  for _, m in ipairs(e.review_add) do
    redis.call('ZADD', KEYS[4], tonumber(t[1]), m)
  end
end
if e.review_rem then
  for _, m in ipairs(e.review_rem) do
    redis.call('ZREM', KEYS[4], m)
  end
end
if e.accounts then
  -- A part became final: capture what it delivered, release the rest (exactly once: the
  -- part's settled flag changed in the document written above, under the same CAS).
  for _, m in ipairs(e.accounts) do
    local key, ledger = KEYS[m.k], KEYS[m.k + 1]
    local a = acct_load(key)
    if a then
      if m.cap > 0 then
        a.balance = redis.call('HINCRBY', key, 'balance', acct_int(-m.cap))
        a.held = redis.call('HINCRBY', key, 'held', acct_int(-m.cap))
        acct_entry(ledger, 'capture', m.cap, -m.cap, -m.cap, a, m.o, tostring(m.p), '', '')
      end
      if m.rel > 0 then
        a.held = redis.call('HINCRBY', key, 'held', acct_int(-m.rel))
        if a.day == m.d then
          redis.call('HSET', key, 'day_spent', acct_int(math.max(0, a.day_spent - m.rel)))
        end
        acct_entry(ledger, 'release', m.rel, 0, -m.rel, a, m.o, tostring(m.p), '', '')
      end
      acct_low(key, a, nil, nil, nil, m.c, nil, nil)
    end
    if m.x == 1 then
      redis.call('ZREM', KEYS[7], m.o .. ':' .. m.c)
    end
  end
end
if e.publish then
  redis.call('PUBLISH', e.publish, ARGV[3])
end
return nv
