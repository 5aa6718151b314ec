"""The Lua scripts the session store runs with EVALSHA: one round trip each, atomic.

Times are integers in milliseconds from the application's clock (injectable for
tests); key lifetimes are set with relative PEXPIRE so that Redis's own clock, not
the application host's, decides when a key disappears. A session's key lifetime is
always ``min(created + absolute, last_seen + idle) - now``.

Every script that writes a session hash reads it again as its last step. A write ends
Redis's client-side tracking of the key for every connection, the writer's included;
the closing read makes Redis track it again for the connection that ran the script, so
the next change by anyone else is pushed to it (see ``sessions.cache``).
"""

# LOAD  KEYS: session [, user index]
#       ARGV: now, idle, absolute, touch_after, sid
# Returns the hash as a flat array, or nil when missing, incomplete or timed out
# (a timed-out session is deleted on the spot and removed from its user's index).
# ``last_seen`` is only rewritten when it is older than ``touch_after``: most reads
# stay reads, and the idle timeout is exact to within ``touch_after``.
LOAD = """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local created, seen
for i = 1, #h, 2 do
  if h[i] == '@c' then created = tonumber(h[i + 1])
  elseif h[i] == '@s' then seen = tonumber(h[i + 1]) end
end
local now, idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if not created or not seen or now >= created + absolute or now >= seen + idle then
  redis.call('DEL', KEYS[1])
  if KEYS[2] then redis.call('ZREM', KEYS[2], ARGV[5]) end
  return false
end
if now - seen >= tonumber(ARGV[4]) then
  local expires = math.min(created + absolute, now + idle)
  redis.call('HSET', KEYS[1], '@s', now)
  redis.call('PEXPIRE', KEYS[1], expires - now)
  if KEYS[2] then
    redis.call('ZADD', KEYS[2], expires, ARGV[5])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[2], math.max(1, tonumber(last[2]) - now))
  end
  for i = 1, #h, 2 do
    if h[i] == '@s' then h[i + 1] = tostring(now) end
  end
  redis.call('EXISTS', KEYS[1])  -- read after the write: tracked again
end
return h
"""

# CREATE  KEYS: session [, user index]
#         ARGV: now, idle, absolute, sid, cap, key prefix of the user's sessions,
#               field1, value1, ...
# Writes a new session hash with its metadata and lifetime and, for a signed-in
# session, adds it to the user's index (scored by expiry), pruning dead members and
# keeping the index alive exactly as long as its longest-lived member. With a cap
# (> 0) on live sessions per user, the sessions due to expire first (the least
# recently used) are deleted until the user has no more than the cap; their ids are
# returned (an empty array otherwise).
CREATE = """
local now, idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = math.min(idle, absolute)
local ended = {}
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[1], ttl)
if KEYS[2] then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local cap = tonumber(ARGV[5])
  local excess = redis.call('ZCARD', KEYS[2]) - cap
  if cap > 0 and excess > 0 then
    for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess)) do
      if #ended < excess and sid ~= ARGV[4] then
        redis.call('DEL', ARGV[6] .. sid)
        redis.call('ZREM', KEYS[2], sid)
        table.insert(ended, sid)
      end
    end
  end
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[2], math.max(1, tonumber(last[2]) - now))
end
redis.call('EXISTS', KEYS[1])  -- read after the write: tracked again
return ended
"""

# SAVE  KEYS: session
#       ARGV: n_set, n_del, n_incr, set pairs..., del names..., incr pairs...
# Applies a request's delta only if the session still exists, so a request that
# finishes after logout, revocation or expiry cannot bring the session back.
# Returns nil when the session is gone, else the counters' new values, in the order
# given (the writer's cache applies the delta to the entry it holds: see
# sessions.store). The last command reads the key: a write ends Redis's tracking of it,
# and the read makes Redis track it again for this connection.
SAVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n_set, n_del, n_incr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
if n_set > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, i, i + 2 * n_set - 1))
  i = i + 2 * n_set
end
if n_del > 0 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, i + n_del - 1))
  i = i + n_del
end
local counters = {}
for j = 1, n_incr do
  counters[j] = redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('EXISTS', KEYS[1])  -- read after the write: tracked again
return counters
"""

# LIST  KEYS: user index
#       ARGV: now, key prefix of the user's sessions ("...sess:{u:<id>}:")
# Prunes expired members, then returns for each live session its sid and every field
# of its hash, flat (members whose hash vanished are dropped).
LIST = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[2] .. sid)
  if #h > 0 then
    table.insert(out, {sid, h})
  else
    redis.call('ZREM', KEYS[1], sid)
  end
end
return out
"""

# END_OTHERS  KEYS: user index
#             ARGV: key prefix of the user's sessions, sid to keep ('' keeps none)
# Deletes every session of the user but one, and their index entries.
# Returns the ids of the sessions it deleted.
END_OTHERS = """
local ended = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if sid ~= ARGV[2] then
    if redis.call('DEL', ARGV[1] .. sid) == 1 then table.insert(ended, sid) end
    redis.call('ZREM', KEYS[1], sid)
  end
end
return ended
"""

# DESTROY  KEYS: session [, user index]
#          ARGV: sid
# Deletes a session and its index entry atomically (sign-out, revocation).
DESTROY = """
redis.call('DEL', KEYS[1])
if KEYS[2] then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
"""

# FENCE  KEYS: a key on the Redis node to fence (declared for routing only)
# Does nothing. Sent once the reply to a sign-out (DESTROY, END_OTHERS) has arrived, it
# runs in a later pass of Redis's event loop than the sign-out; so when its reply
# arrives, Redis has written the invalidations the sign-out caused to every other
# connection (it writes them in the sign-out's own pass, but possibly just after the
# sign-out's reply). A process that answers "signed out" only then can be sure that
# every other process's cache refuses the session from its next lookup on.
FENCE = """
return 1
"""
