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

// ARGV: deadline (Redis time, ms), payload, then (field, channel) pairs.
// Publishes the payload on each channel; returns, for each field in order,
// the connections it counts on live replicas. Past the deadline it publishes nothing: the caller
// has already answered UNAVAILABLE, and that must mean "not delivered" even
// when Redis was only slow (a script queued behind DEBUG SLEEP or a long
// command runs once Redis wakes up).
inline constexpr const char* kPublish = NOTIFY_LUA_ALIVE
    "if now > tonumber(ARGV[1]) then return redis.error_reply('EXPIRED the caller gave up waiting') end\n"
    "local out = {}\n"
    "for i = 3, #ARGV, 2 do\n"
    "  redis.call('PUBLISH', ARGV[i + 1], ARGV[2])\n"
    "  out[#out + 1] = count(ARGV[i])\n"
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

}  // namespace notify::broker::scripts
