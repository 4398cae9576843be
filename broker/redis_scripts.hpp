#pragma once
// The Lua scripts the Redis broker runs (EVAL; Redis caches them compiled).
// Each runs atomically on one shard, so a publish and the presence count that
// answers it can't interleave with another replica's update.
//
// Keys on every shard (docs/architecture.md#the-broker):
//   notify:nodes          ZSET  replica id -> expiry (Redis time, ms)
//   notify:counts:<node>  HASH  field -> connections, for the channels this
//                               shard owns: u:<user>, t:<topic>, * (all
//                               connections), c (client message consumers);
//                               expires with the replica's heartbeat
//   notify:hist:<stream>  STREAM   the stream's history: entry id <offset>-0,
//                                  fields t (Redis time, ms) and m (the
//                                  message as published, with its place)
//   notify:hmeta:<stream> HASH     e (epoch), h (last offset), x (highest
//                                  offset trimmed for size or age)
//   notify:hkeys:<stream> HASH     collapse key -> offset of its kept entry
//   notify:epochs         STRING   a counter that makes epochs unique
//   notify:gen            STRING   the run_id of the Redis process history
//                                  is written to; a stream whose meta has
//                                  another (field g) starts a new epoch
// where <stream> is user:<id>, topic:<t> or all (the channel without
// "notify:"); the history keys expire after --history-ttl without a
// notification, and the stream's next one starts a new epoch.
// Channels: notify:user:<user>, notify:topic:<topic>, notify:all,
// notify:upstream, notify:probe:<node>.

namespace notify::broker::scripts {

// The current Redis time in ms, and the replicas alive at it. Read-only, so
// a Redis out of memory (noeviction) still publishes; kSync drops the dead.
#define NOTIFY_LUA_ALIVE                                                     \
  "local t = redis.call('TIME')\n"                                           \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"  \
  "local nodes = redis.call('ZRANGEBYSCORE', 'notify:nodes', now, '+inf')\n" \
  "local function count(field)\n"                                            \
  "  local n = 0\n"                                                          \
  "  for _, node in ipairs(nodes) do\n"                                      \
  "    local c = redis.call('HGET', 'notify:counts:' .. node, field)\n"      \
  "    if c then n = n + tonumber(c) end\n"                                  \
  "  end\n"                                                                  \
  "  return n\n"                                                             \
  "end\n"

// History (needs `t`, `now`, `hsize` and `httl` in scope). trim() drops
// the oldest entries beyond hsize or older than httl, remembering the
// highest offset dropped (a client behind it can't resume); start() gives a
// stream without history its epoch.
#define NOTIFY_LUA_HISTORY                                                                              \
  "local gen = redis.call('GET', 'notify:gen') or ''\n"                                                 \
  "local function current(mk)\n"                                                                        \
  "  local m = redis.call('HMGET', mk, 'e', 'g')\n"                                                     \
  "  if m[1] and m[2] == gen then return m[1] end\n"                                                    \
  "  return nil\n"                                                                                      \
  "end\n"                                                                                               \
  "local function keys(s) return 'notify:hist:' .. s, 'notify:hmeta:' .. s, 'notify:hkeys:' .. s end\n" \
  "local function trim(hk, mk)\n"                                                                       \
  "  while true do\n"                                                                                   \
  "    local first = redis.call('XRANGE', hk, '-', '+', 'COUNT', 1)[1]\n"                               \
  "    if not first then return end\n"                                                                  \
  "    if redis.call('XLEN', hk) <= hsize and tonumber(first[2][2]) >= now - httl then return end\n"    \
  "    redis.call('XDEL', hk, first[1])\n"                                                              \
  "    redis.call('HSET', mk, 'x', string.match(first[1], '^(%d+)'))\n"                                 \
  "  end\n"                                                                                             \
  "end\n"                                                                                               \
  "local function start(hk, mk, kk)\n"                                                                  \
  "  local epoch = t[1] .. t[2] .. '-' .. redis.call('INCR', 'notify:epochs')\n"                        \
  "  redis.call('DEL', hk, kk)\n"                                                                       \
  "  redis.call('HSET', mk, 'e', epoch, 'h', 0, 'x', 0, 'g', gen)\n"                                    \
  "  redis.call('PEXPIRE', mk, httl)\n"                                                                 \
  "  return epoch\n"                                                                                    \
  "end\n"

// ARGV: deadline (Redis time, ms), payload, history size (0: none), history
// ttl (ms), collapse key ('' for none), then (field, channel) pairs.
// Publishes the payload on each channel; returns, for each field in order,
// the connections it counts on live replicas. Past the deadline it publishes nothing: the caller
// has already answered UNAVAILABLE, and that must mean "not delivered" even
// when Redis was only slow (a script queued behind DEBUG SLEEP or a long
// command runs once Redis wakes up).
//
// With history, each channel's message is first appended to its stream's
// history with the next offset, and what is published is the envelope
// with its place added ("st", "ep", "o"): the append and the publish are one
// atomic step, so every replica and every later read agree on the offsets.
// A collapse key replaces the stream's kept entry with the same key.
inline constexpr const char* kPublish = NOTIFY_LUA_ALIVE
    "if now > tonumber(ARGV[1]) then return redis.error_reply('EXPIRED the caller gave up waiting') end\n"
    "local hsize = tonumber(ARGV[3])\n"
    "local httl = tonumber(ARGV[4])\n"
    "local ck = ARGV[5]\n" NOTIFY_LUA_HISTORY
    "local function append(channel, payload)\n"
    "  local s = string.sub(channel, 8)\n"
    "  local hk, mk, kk = keys(s)\n"
    "  local epoch = current(mk) or start(hk, mk, kk)\n"
    "  local head = redis.call('HINCRBY', mk, 'h', 1)\n"
    "  local msg = string.sub(payload, 1, -2) .. ',\"st\":\"' .. s .. '\",\"ep\":\"' .. epoch .. '\",\"o\":' .. head "
    ".. '}'\n"
    "  if ck ~= '' then\n"
    "    local old = redis.call('HGET', kk, ck)\n"
    "    if old then redis.call('XDEL', hk, old .. '-0') end\n"
    "    redis.call('HSET', kk, ck, head)\n"
    "    redis.call('PEXPIRE', kk, httl)\n"
    "  end\n"
    "  redis.call('XADD', hk, head .. '-0', 't', now, 'm', msg)\n"
    "  trim(hk, mk)\n"
    "  redis.call('PEXPIRE', hk, httl)\n"
    "  redis.call('PEXPIRE', mk, httl)\n"
    "  redis.call('PEXPIRE', kk, httl)\n"
    "  return msg\n"
    "end\n"
    "local out = {}\n"
    "for i = 6, #ARGV, 2 do\n"
    "  local msg = ARGV[2]\n"
    "  if hsize > 0 then msg = append(ARGV[i + 1], msg) end\n"
    "  redis.call('PUBLISH', ARGV[i + 1], msg)\n"
    "  out[#out + 1] = count(ARGV[i])\n"
    "end\n"
    "return out\n";

// ARGV: the run_id of the Redis process. Makes it the history generation
// (notify:gen); returns 1 if that changed it.
inline constexpr const char* kGeneration =
    "if redis.call('GET', 'notify:gen') == ARGV[1] then return 0 end\n"
    "redis.call('SET', 'notify:gen', ARGV[1])\n"
    "return 1\n";

#define NOTIFY_LUA_NOW             \
  "local t = redis.call('TIME')\n" \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

// ARGV: history ttl (ms), then streams. Returns each stream's {epoch, last
// offset}; a stream without history gets its epoch now.
inline constexpr const char* kHistoryPositions = NOTIFY_LUA_NOW
    "local hsize = 1\n"
    "local httl = tonumber(ARGV[1])\n" NOTIFY_LUA_HISTORY
    "local out = {}\n"
    "for i = 2, #ARGV do\n"
    "  local hk, mk, kk = keys(ARGV[i])\n"
    "  local epoch = current(mk) or start(hk, mk, kk)\n"
    "  out[#out + 1] = {epoch, tonumber(redis.call('HGET', mk, 'h'))}\n"
    "end\n"
    "return out\n";

// ARGV: history size, history ttl (ms), then (stream, epoch, offset)
// triples. Returns, per stream, {outcome, epoch, last offset, messages...}:
// outcome ok with every kept message after the offset, oldest first, or
// too_old / epoch_changed / ahead with none.
inline constexpr const char* kHistoryRead = NOTIFY_LUA_NOW
    "local hsize = tonumber(ARGV[1])\n"
    "local httl = tonumber(ARGV[2])\n" NOTIFY_LUA_HISTORY
    "local out = {}\n"
    "for i = 3, #ARGV, 3 do\n"
    "  local hk, mk, kk = keys(ARGV[i])\n"
    "  local want, offset = ARGV[i + 1], tonumber(ARGV[i + 2])\n"
    "  local epoch = current(mk)\n"
    "  local r\n"
    "  if not epoch then\n"
    "    r = {(want == '' and offset == 0) and 'ok' or 'epoch_changed', '', 0}\n"
    "  else\n"
    "    trim(hk, mk)\n"
    "    local head = tonumber(redis.call('HGET', mk, 'h'))\n"
    "    if want ~= epoch then r = {'epoch_changed', epoch, head}\n"
    "    elseif offset > head then r = {'ahead', epoch, head}\n"
    "    elseif offset < tonumber(redis.call('HGET', mk, 'x')) then r = {'too_old', epoch, head}\n"
    "    else\n"
    "      r = {'ok', epoch, head}\n"
    "      for _, e in ipairs(redis.call('XRANGE', hk, '(' .. offset .. '-0', '+')) do r[#r + 1] = e[2][4] end\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = r\n"
    "end\n"
    "return out\n";

// ARGV: fields. Returns each field's count on live replicas.
inline constexpr const char* kCount = NOTIFY_LUA_ALIVE
    "local out = {}\n"
    "for i = 1, #ARGV do out[i] = count(ARGV[i]) end\n"
    "return out\n";

// ARGV: node, ttl ms, reset (1: drop the node's counts first), then (field,
// count) pairs (0 deletes). Also the heartbeat: keeps the node alive for ttl
// and drops the replicas whose time ran out. Returns 1 when the node was not
// in the set (it had expired, or Redis lost it): its counts must be written
// again in full.
inline constexpr const char* kSync =
    "redis.replicate_commands()\n"  // writes after TIME (needed before Redis 5)
    "local key = 'notify:counts:' .. ARGV[1]\n"
    "local ttl = tonumber(ARGV[2])\n"
    "if ARGV[3] == '1' then redis.call('DEL', key) end\n"
    "for i = 4, #ARGV, 2 do\n"
    "  if tonumber(ARGV[i + 1]) > 0 then redis.call('HSET', key, ARGV[i], ARGV[i + 1])\n"
    "  else redis.call('HDEL', key, ARGV[i]) end\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', 'notify:nodes', '-inf', '(' .. now)\n"
    "local added = redis.call('ZADD', 'notify:nodes', now + ttl, ARGV[1])\n"
    "redis.call('PEXPIRE', key, ttl)\n"
    "return added\n";

// ARGV: node. A replica's goodbye: it leaves presence at once.
inline constexpr const char* kLeave =
    "redis.call('ZREM', 'notify:nodes', ARGV[1])\n"
    "redis.call('DEL', 'notify:counts:' .. ARGV[1])\n"
    "return 1\n";

#undef NOTIFY_LUA_ALIVE
#undef NOTIFY_LUA_NOW
#undef NOTIFY_LUA_HISTORY

}  // namespace notify::broker::scripts
