//! The Lua scripts of the Redis store: each quota check, claim, lease move, completion, append
//! and lease is one script, atomic and one round trip, on Redis's own clock.

/// GCRA, the same steps as [`Gcra::check`]. KEYS: TAT, blocked-until. ARGV: period and tolerance
/// (µs), and optionally `now` (µs; tests inject a clock, and as their clock is not Redis's the key
/// then lives a minute longer; otherwise Redis's `TIME` from a recent epoch keeps the numbers
/// exact in Lua's doubles). The TAT key expires when the TAT passes. Returns `{1, remaining}`,
/// `{0, wait_us}` (the budget's spacing) or `{2, wait_us}` (blocked).
pub(super) const TAKE: &str = r"
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return {2, blocked * 1000} end
local period = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
end
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then tat = math.max(tonumber(stored), now) end
local earliest = tat - tolerance
if now < earliest then return {0, earliest - now} end
local nxt = tat + period
local capacity = tolerance + period
local remaining = math.floor(math.min(math.max(now + capacity - nxt, 0), capacity) / period)
local ttl = math.ceil((nxt - now) / 1000)
if ARGV[3] then ttl = ttl + 60000 end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', ttl)
return {1, remaining}
";

/// Blocks KEYS[1] for ARGV[1] ms unless a longer block is in place.
pub(super) const BLOCK: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
";

/// Claims KEYS[1] (hash: s state, f fingerprint, r record, e lease end ms, n note) for
/// fingerprint ARGV[1] with note ARGV[2], a lease of ARGV[3] ms, kept ARGV[4] ms; or returns what
/// holds it: `{'claimed'}`, `{'reclaimed', note}` (an unsettled attempt of the same fingerprint),
/// `{'flight', fingerprint, ms left}`, `{'unsettled', fingerprint}` or `{'done', fingerprint,
/// record}`. Time is Redis's own.
pub(super) const CLAIM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 's', 'f', 'r', 'e', 'n')
if held[1] == 'done' then return {'done', held[2] or '', held[3] or ''} end
local lease_end = now + tonumber(ARGV[3])
if held[1] then
  local e = tonumber(held[4] or '0')
  if e > now then return {'flight', held[2] or '', string.format('%.0f', e - now)} end
  if held[2] ~= ARGV[1] then return {'unsettled', held[2] or ''} end
  redis.call('HSET', KEYS[1], 'e', string.format('%.0f', lease_end))
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  return {'reclaimed', held[5] or ''}
end
redis.call('HSET', KEYS[1], 's', 'flight', 'f', ARGV[1], 'n', ARGV[2], 'e', string.format('%.0f', lease_end))
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), tonumber(ARGV[3])))
return {'claimed'}
";

/// Moves the lease end of KEYS[1] to ARGV[2] ms from now if fingerprint ARGV[1] holds it in
/// flight (ARGV[3] = 1: only while the lease is live); returns 1 when it moved.
pub(super) const SET_LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 's', 'f', 'e')
if held[1] ~= 'flight' or held[2] ~= ARGV[1] then return 0 end
if ARGV[3] == '1' and tonumber(held[3] or '0') <= now then return 0 end
-- A lease of 0 ends it for good (0, not now: a clock that steps back must not revive it).
local lease_end = 0
if tonumber(ARGV[2]) > 0 then lease_end = now + tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 'e', string.format('%.0f', lease_end))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// Stores the record ARGV[2] of fingerprint ARGV[1] under KEYS[1] for ARGV[3] ms, unless another
/// fingerprint's finished record is there.
pub(super) const COMPLETE: &str = r"
local held = redis.call('HMGET', KEYS[1], 's', 'f')
if held[1] == 'done' and held[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'done', 'f', ARGV[1], 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Deletes KEYS[1] if it is still in flight.
pub(super) const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 's') == 'flight' then redis.call('DEL', KEYS[1]) end
return 1
";

/// Appends ARGV[2..] to stream KEYS[1] (field `b`) with ids from Redis's clock, dropping entries
/// older than ARGV[1] ms; the key lives ARGV[1] ms past the last append. Returns the ids.
pub(super) const APPEND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retention = tonumber(ARGV[1])
local minid = math.max(now - retention, 0)
local ids = {}
for i = 2, #ARGV do
  if i == 2 then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MINID', string.format('%.0f', minid), '*', 'b', ARGV[i])
  else
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'b', ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return ids
";

/// Lease KEYS[1] (hash: h holder, t token, e expiry ms) for holder ARGV[1] for ARGV[2] ms; the
/// hash is kept ARGV[3] ms. Returns the token (a new one when the holder changes), or -1 while
/// another holder's lease is live.
pub(super) const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('HMGET', KEYS[1], 'h', 't', 'e')
local token = tonumber(held[2] or '0')
local live = tonumber(held[3] or '0') > now
if live and held[1] ~= ARGV[1] then return -1 end
if held[1] ~= ARGV[1] then token = token + 1 end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 't', string.format('%.0f', token),
  'e', string.format('%.0f', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return token
";

/// Ends KEYS[1]'s lease if ARGV[1] holds it (the token stays).
pub(super) const RELEASE_LEASE: &str = r"
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then redis.call('HSET', KEYS[1], 'e', '0') end
return 1
";
