-- Attribute upstream orders to one checkout reference, all or nothing.
--
-- KEYS[1]  ref:<reference>   the reference's order ids (JSON list)
-- KEYS[2]  pending            sorted set of sent, unresolved references
-- KEYS[3..] claim:<order id>  the reference owning each order
-- ARGV[1]  reference
-- ARGV[2]  ttl seconds
-- ARGV[3]  the order ids as the JSON list stored in KEYS[1]
--
-- An order is owned by at most one reference, and a reference maps to one set of orders:
-- when any order is another reference's, or the reference already maps to other orders,
-- nothing is written and the answer says why. Otherwise every claim and the mapping are
-- written and the reference leaves the pending set, in one step.
--
-- Returns {'ok'} | {'taken', id, owner, id, owner, ...} | {'mapped', <stored JSON list>}
local reference = ARGV[1]
local ttl = tonumber(ARGV[2])
local mapped = redis.call('GET', KEYS[1])
if mapped and mapped ~= ARGV[3] then
  return {'mapped', mapped}
end
local taken = {'taken'}
for i = 3, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner and owner ~= reference then
    table.insert(taken, i - 2)
    table.insert(taken, owner)
  end
end
if #taken > 1 then
  return taken
end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], reference, 'EX', ttl)
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ttl)
redis.call('ZREM', KEYS[2], reference)
return {'ok'}
