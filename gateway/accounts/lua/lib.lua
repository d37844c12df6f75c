-- Account functions shared by every script that moves money; prepended to each of them
-- (gateway.accounts.scripts), so a hold, a capture and a top-up book the same way.
--
-- Account hash fields: balance, held, limit (credit limit; 0 = prepaid), order_cap and
-- day_cap (absent = none), day (UTC yyyymmdd of day_spent) and day_spent, low_threshold
-- (absent = no low-balance notice), low ('1' while available is below the threshold).
-- Amounts are integers of minor units; they are written with acct_int, never as Lua
-- numbers (redis.call formats numbers with %.14g: 1e+15 is not an amount).

local function acct_int(n)
  return string.format('%d', n)
end

local function acct_load(key)
  local f = redis.call('HMGET', key, 'balance', 'held', 'limit', 'order_cap', 'day_cap',
                       'day', 'day_spent', 'low_threshold', 'low')
  if not f[1] then
    return nil
  end
  return {balance = tonumber(f[1]), held = tonumber(f[2]) or 0, limit = tonumber(f[3]) or 0,
          order_cap = tonumber(f[4]), day_cap = tonumber(f[5]), day = f[6] or '',
          day_spent = tonumber(f[7]) or 0, low_threshold = tonumber(f[8]), low = f[9] == '1'}
end

local function acct_available(a)
  return a.balance - a.held + a.limit
end

-- Append one ledger entry; db/dh: the change to the posted balance and to the holds.
-- The stream id (ms-seq) is the entry's unique id and time.
local function acct_entry(ledger, kind, amount, db, dh, a, order, part, ref, note)
  return redis.call('XADD', ledger, '*', 'k', kind, 'a', acct_int(amount), 'db', acct_int(db),
                    'dh', acct_int(dh), 'b', acct_int(a.balance), 'h', acct_int(a.held),
                    'l', acct_int(a.limit), 'o', order or '', 'p', part or '', 'r', ref or '',
                    'n', note or '')
end

-- After a movement: re-arm the low-balance notice when available is back at or above
-- the threshold; on a crossing below it (only where `events` is given: holds, debits,
-- limit changes), record the event and enqueue its delivery job in the same step, so a
-- crossing is announced once. Returns the event id or nil.
local function acct_low(key, a, events, jobs, rid, cur, nonce, cause)
  if a.low_threshold == nil then
    return nil
  end
  local available = acct_available(a)
  if available >= a.low_threshold then
    if a.low then
      redis.call('HDEL', key, 'low')
      a.low = false
    end
    return nil
  end
  if a.low or events == nil then
    return nil
  end
  redis.call('HSET', key, 'low', '1')
  a.low = true
  local id = 'evt_low_' .. rid .. '_' .. cur .. '_' .. string.gsub(cause, '-', '_')
  local t = redis.call('TIME')
  redis.call('HSET', events, id,
             table.concat({cur, acct_int(available), acct_int(a.low_threshold),
                           acct_int(a.balance), acct_int(a.held), acct_int(a.limit),
                           t[1]}, '|'),
             id .. ':job', nonce)
  redis.call('XADD', jobs, '*', 'j',
             'account_notice|' .. rid .. '/' .. cur .. '/' .. id .. '|0|' .. nonce)
  return id
end
