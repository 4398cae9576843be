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

// The inbox of a user (needs `now`; docs/protocol.md#inbox): notify:inbox:<u>
// (ids by publish time), notify:inboxx:<u> (ids by expiry),
// notify:inboxd:<u> (id -> the notification's JSON) and notify:inboxp:<u>
// (ids still to push to the user's next connection). iprune() drops what
// expired; iexpire() lets the keys go with their last entry; unread()
// publishes the count to the user's connections (an envelope of kind "u"
// from `node`, not for connection `except`).
#define NOTIFY_LUA_INBOX                                                                                            \
  "local function ikeys(u)\n"                                                                                       \
  "  return 'notify:inbox:' .. u, 'notify:inboxx:' .. u, 'notify:inboxd:' .. u, 'notify:inboxp:' .. u\n"            \
  "end\n"                                                                                                           \
  "local function iremove(z, x, d, p, id)\n"                                                                        \
  "  redis.call('ZREM', z, id)\n"                                                                                   \
  "  redis.call('ZREM', x, id)\n"                                                                                   \
  "  redis.call('HDEL', d, id)\n"                                                                                   \
  "  redis.call('SREM', p, id)\n"                                                                                   \
  "end\n"                                                                                                           \
  "local function iprune(z, x, d, p)\n"                                                                             \
  "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', x, '-inf', now)) do iremove(z, x, d, p, id) end\n"             \
  "end\n"                                                                                                           \
  "local function iexpire(z, x, d, p)\n"                                                                            \
  "  local last = redis.call('ZRANGE', x, -1, -1, 'WITHSCORES')\n"                                                  \
  "  if last[2] then for _, k in ipairs({z, x, d, p}) do redis.call('PEXPIREAT', k, last[2]) end end\n"             \
  "end\n"                                                                                                           \
  "local function unread(u, z, node, except)\n"                                                                     \
  "  local n = redis.call('ZCARD', z)\n"                                                                            \
  "  redis.call('PUBLISH', 'notify:user:' .. u, '{\"v\":1,\"k\":\"u\",\"node\":\"' .. node .. '\",\"c\":' .. n .. " \
  "',\"x\":\"' .. except .. '\"}')\n"                                                                               \
  "  return n\n"                                                                                                    \
  "end\n"

// ARGV: deadline (Redis time, ms), payload, history size (0: none), history
// ttl (ms), collapse key ('' for none), inbox expiry (unix ms; 0: not
// persisted), inbox size, notification id, its ts, its inbox JSON, this
// replica's node id, then (field, channel) pairs.
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
//
// A persisted notification also goes into each addressed user's inbox, in
// the same atomic step: pending for a user counted on no live replica, and
// each user's connections are sent the new unread count after it.
inline constexpr const char* kPublish = NOTIFY_LUA_ALIVE
    "if now > tonumber(ARGV[1]) then return redis.error_reply('EXPIRED the caller gave up waiting') end\n"
    "local hsize = tonumber(ARGV[3])\n"
    "local httl = tonumber(ARGV[4])\n"
    "local ck = ARGV[5]\n"
    "local ix, isize, iid, its, ipayload, node = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9], ARGV[10], "
    "ARGV[11]\n" NOTIFY_LUA_HISTORY NOTIFY_LUA_INBOX
    "local function keep(u, online)\n"
    "  local z, x, d, p = ikeys(u)\n"
    "  iprune(z, x, d, p)\n"
    "  iremove(z, x, d, p, iid)\n"
    "  redis.call('ZADD', z, its, iid)\n"
    "  redis.call('ZADD', x, ix, iid)\n"
    "  redis.call('HSET', d, iid, ipayload)\n"
    "  if not online then redis.call('SADD', p, iid) end\n"
    "  while redis.call('ZCARD', z) > isize do iremove(z, x, d, p, redis.call('ZRANGE', z, 0, 0)[1]) end\n"
    "  iexpire(z, x, d, p)\n"
    "  return z\n"
    "end\n"
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
    "for i = 12, #ARGV, 2 do\n"
    "  local msg = ARGV[2]\n"
    "  local n = count(ARGV[i])\n"
    "  local u = string.match(ARGV[i + 1], '^notify:user:(.+)$')\n"
    "  local z = (ix > 0 and u) and keep(u, n > 0) or nil\n"
    "  if hsize > 0 then msg = append(ARGV[i + 1], msg) end\n"
    "  redis.call('PUBLISH', ARGV[i + 1], msg)\n"
    "  if z then unread(u, z, node, '') end\n"
    "  out[#out + 1] = n\n"
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

// The inbox as connections use it. ARGV: op, user, then
//  take  max items, max bytes: the pending entries, oldest first, no longer
//        pending;
//  list  before id ('' for the newest), max items, max bytes: a page, newest
//        first;
//  read  node, except connection, '1' for all or '0', ids: removes them and
//        publishes the new count to the user's connections;
//  pend  ids: pending again (those still in the inbox).
// Returns {unread, more (0/1), id, json, id, json...} ({unread} for read and
// pend; more is -1 when list's `before` is not in the inbox).
inline constexpr const char* kInbox = NOTIFY_LUA_NOW NOTIFY_LUA_INBOX
    "local op, u = ARGV[1], ARGV[2]\n"
    "local z, x, d, p = ikeys(u)\n"
    "iprune(z, x, d, p)\n"
    "if op == 'read' then\n"
    "  if ARGV[5] == '1' then redis.call('DEL', z, x, d, p)\n"
    "  else for i = 6, #ARGV do iremove(z, x, d, p, ARGV[i]) end end\n"
    "  return {unread(u, z, ARGV[3], ARGV[4])}\n"
    "end\n"
    "if op == 'pend' then\n"
    "  for i = 3, #ARGV do if redis.call('ZSCORE', z, ARGV[i]) then redis.call('SADD', p, ARGV[i]) end end\n"
    "  return {redis.call('ZCARD', z)}\n"
    "end\n"
    "local ids, max, bytes\n"
    "if op == 'take' then\n"
    "  ids = redis.call('SMEMBERS', p)\n"
    "  local ts = {}\n"
    "  for _, id in ipairs(ids) do ts[id] = tonumber(redis.call('ZSCORE', z, id) or 0) end\n"
    "  table.sort(ids, function(a, b) if ts[a] ~= ts[b] then return ts[a] < ts[b] end return a < b end)\n"
    "  max, bytes = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "else\n"
    "  local start = 0\n"
    "  if ARGV[3] ~= '' then\n"
    "    local r = redis.call('ZREVRANK', z, ARGV[3])\n"
    "    if not r then return {redis.call('ZCARD', z), -1} end\n"
    "    start = r + 1\n"
    "  end\n"
    "  max, bytes = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "  ids = redis.call('ZREVRANGE', z, start, start + max)\n"
    "end\n"
    "local out = {redis.call('ZCARD', z), 0}\n"
    "local used, taken = 0, 0\n"
    "for _, id in ipairs(ids) do\n"
    "  local json = redis.call('HGET', d, id)\n"
    "  if json then\n"
    "    if taken > 0 and (taken >= max or used + #json > bytes) then out[2] = 1 break end\n"
    "    out[#out + 1] = id\n"
    "    out[#out + 1] = json\n"
    "    used, taken = used + #json, taken + 1\n"
    "    if op == 'take' then redis.call('SREM', p, id) end\n"
    "  elseif op == 'take' then redis.call('SREM', p, id) end\n"
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
