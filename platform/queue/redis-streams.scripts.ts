/**
 * Lua scripts of the Redis Streams queue. Every change of a message's place (delayed set,
 * stream, pending list, dead letters) happens inside one script, so it is atomic: two
 * consumers promoting delayed messages at once never add one twice, and a settle never
 * half-happens.
 *
 * Keys: S = the stream (consumer group), D = delayed messages (sorted set, member = order id,
 * score = due time in ms), M = one record per queued order (hash, order id → JSON
 * `{a: attempt, r: request id, e?: stream entry id}`; `e` is absent while the message sits in D),
 * X = the dead-letter stream. M is what makes a second enqueue of an order a no-op.
 */

// A settle carries the consumer and the delivery count it saw; if the entry has since been
// claimed by someone else (or by us again), the settle is stale and does nothing.
const OWNED = `
local function owned(S, group, id, consumer, count)
  local p = redis.pcall('XPENDING', S, group, id, id, 1)
  if type(p) ~= 'table' or p.err then return false end
  local e = p[1]
  return e ~= nil and e[2] == consumer and tonumber(e[4]) == tonumber(count)
end
`;

/** KEYS: S D M. ARGV: order, attempt, request, due ms, now ms. Returns 1 when added, 0 when already queued. */
export const ENQUEUE = `
local S, D, M = KEYS[1], KEYS[2], KEYS[3]
local order, due, now = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
local cur = redis.call('HGET', M, order)
if cur then
  local m = cjson.decode(cur)
  if m.e then
    -- Waiting in the stream or in flight: leave it. A record whose entry is gone (lost to
    -- eviction or a flush) is stale and falls through to a fresh enqueue.
    if #redis.call('XRANGE', S, m.e, m.e) > 0 then return 0 end
  else
    local score = redis.call('ZSCORE', D, order)
    if score then
      if due < tonumber(score) then redis.call('ZADD', D, due, order) end
      return 0
    end
  end
end
local m = { a = tonumber(ARGV[2]), r = ARGV[3] }
if due <= now then
  m.e = redis.call('XADD', S, '*', 'order', order, 'attempt', ARGV[2], 'request', ARGV[3])
else
  redis.call('ZADD', D, due, order)
end
redis.call('HSET', M, order, cjson.encode(m))
return 1
`;

/**
 * KEYS: S D M. ARGV: group, consumer, now ms, max, visibility ms, autoclaim cursor.
 * Moves due delayed messages into the stream, takes over entries idle longer than the
 * visibility timeout, then reads new entries. Returns {next cursor, {{id, fields, deliveries}…},
 * next due time in D or nil}.
 */
export const TAKE = `
local S, D, M = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, now, max = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
for _, order in ipairs(redis.call('ZRANGE', D, '-inf', now, 'BYSCORE', 'LIMIT', 0, 100)) do
  redis.call('ZREM', D, order)
  local m = cjson.decode(redis.call('HGET', M, order) or '{"a":0,"r":""}')
  m.e = redis.call('XADD', S, '*', 'order', order, 'attempt', m.a, 'request', m.r)
  redis.call('HSET', M, order, cjson.encode(m))
end
local out = {}
local claimed = redis.call('XAUTOCLAIM', S, group, consumer, ARGV[5], ARGV[6], 'COUNT', max)
for _, e in ipairs(claimed[2]) do
  if e[2] then
    local p = redis.call('XPENDING', S, group, e[1], e[1], 1)
    out[#out + 1] = { e[1], e[2], p[1] and p[1][4] or 1 }
  end
end
if #out < max then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', max - #out, 'STREAMS', S, '>')
  if r then
    for _, e in ipairs(r[1][2]) do out[#out + 1] = { e[1], e[2], 1 } end
  end
end
local nxt = redis.call('ZRANGE', D, 0, 0, 'WITHSCORES')
return { claimed[1], out, nxt[2] or false }
`;

/** KEYS: S M. ARGV: group, consumer, entry id, deliveries, order. */
export const ACK = `${OWNED}
local S, M = KEYS[1], KEYS[2]
local group, consumer, id, order = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
if not owned(S, group, id, consumer, ARGV[4]) then return 0 end
redis.call('XACK', S, group, id)
redis.call('XDEL', S, id)
local cur = redis.call('HGET', M, order)
if cur and cjson.decode(cur).e == id then redis.call('HDEL', M, order) end
return 1
`;

/** KEYS: S D M. ARGV: group, consumer, entry id, deliveries, order, due ms, next attempt, request. */
export const RETRY_LATER = `${OWNED}
local S, D, M = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, id, order = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
if not owned(S, group, id, consumer, ARGV[4]) then return 0 end
redis.call('XACK', S, group, id)
redis.call('XDEL', S, id)
redis.call('ZADD', D, ARGV[6], order)
redis.call('HSET', M, order, cjson.encode({ a = tonumber(ARGV[7]), r = ARGV[8] }))
return 1
`;

/** KEYS: S M X. ARGV: group, consumer, entry id, deliveries, order, attempt, request, reason, at, max dead letters. */
export const DEAD_LETTER = `${OWNED}
local S, M, X = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, id, order = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
if not owned(S, group, id, consumer, ARGV[4]) then return 0 end
redis.call('XACK', S, group, id)
redis.call('XDEL', S, id)
local cur = redis.call('HGET', M, order)
if cur and cjson.decode(cur).e == id then redis.call('HDEL', M, order) end
redis.call('XADD', X, 'MAXLEN', '~', ARGV[10], '*',
  'order', order, 'attempt', ARGV[6], 'request', ARGV[7], 'reason', ARGV[8], 'at', ARGV[9])
return 1
`;

/** KEYS: S D X. ARGV: group. Returns {stream length, pending, delayed, dead letters}, one snapshot. */
export const DEPTH = `
local S, D, X = KEYS[1], KEYS[2], KEYS[3]
local pending = 0
local p = redis.pcall('XPENDING', S, ARGV[1])
if type(p) == 'table' and not p.err then pending = p[1] end
return { redis.call('XLEN', S), pending, redis.call('ZCARD', D), redis.call('XLEN', X) }
`;
