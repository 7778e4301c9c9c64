/**
 * Lua shared by the Redis and Upstash adapters. Each runs as a single command, atomically.
 * A MULTI … EXEC would do the same over a dedicated connection, but Bun's client multiplexes
 * every caller over one connection, so a transaction opened there swallows other callers'
 * commands (they get "QUEUED" instead of their reply).
 */

/** KEYS[1] counter, ARGV[1] ttl in ms: the expiry is set only by the increment that creates the key. */
export const INCR_WITH_TTL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

/** KEYS[1] list, ARGV[1] value, ARGV[2] max length: newest first, older entries beyond max dropped. */
export const PUSH_CAPPED = `
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1`;
