package store

import "github.com/redis/go-redis/v9"

// The Redis store's scripts. Every counter is a hash whose fields are
// instance ids and whose values are the connections each instance holds
// under that counter; the fleet's count is the sum over the live
// instances. Which instances are dead is decided by the lease script on
// Redis's clock and handed to the other scripts as arguments, so that
// each script touches only keys of one hash slot (Redis Cluster).
//
// A script that writes a counter also deletes the fields of the dead
// instances it was told about. Together with the key TTL, this bounds
// how long a dead instance's fields can outlive it (see leaseKeep).

// acquireScript takes one slot of every counter in KEYS, or none.
//
//	KEYS      counters of one decision, all in one hash slot
//	ARGV[1]   this instance's field
//	ARGV[2]   key TTL in milliseconds
//	ARGV[3]   n, the number of dead instances
//	ARGV[4..] their fields, then one limit per key (0: count only)
//
// It returns -1 when every slot was taken, or the 0-based index of the
// first key already at its limit, having taken nothing.
var acquireScript = redis.NewScript(`
local self, ttl, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local dead = {}
for i = 4, 3 + n do dead[ARGV[i]] = true end
for i, key in ipairs(KEYS) do
  local fields = redis.call('HGETALL', key)
  local sum = 0
  for j = 1, #fields, 2 do
    if dead[fields[j]] then
      redis.call('HDEL', key, fields[j])
    else
      sum = sum + tonumber(fields[j + 1])
    end
  end
  local limit = tonumber(ARGV[3 + n + i])
  if limit > 0 and sum >= limit then
    return i - 1
  end
end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, self, 1)
  redis.call('PEXPIRE', key, ttl)
end
return -1
`)

// releaseScript gives back one slot of every counter in KEYS. A field
// that reaches zero is deleted, and never goes below it.
//
//	KEYS      counters, all in one hash slot
//	ARGV[1]   this instance's field
var releaseScript = redis.NewScript(`
for _, key in ipairs(KEYS) do
  if redis.call('HINCRBY', key, ARGV[1], -1) <= 0 then
    redis.call('HDEL', key, ARGV[1])
  end
end
return 0
`)

// syncScript sets this instance's count of one counter to the true value
// it holds, deletes dead instances' fields, and returns the sum of the
// other live instances' counts.
//
//	KEYS[1]   the counter
//	ARGV[1]   this instance's field
//	ARGV[2]   its count
//	ARGV[3]   key TTL in milliseconds
//	ARGV[4]   n, the number of dead instances
//	ARGV[5..] their fields
var syncScript = redis.NewScript(`
local key, self, count = KEYS[1], ARGV[1], tonumber(ARGV[2])
local dead = {}
for i = 5, 4 + tonumber(ARGV[4]) do dead[ARGV[i]] = true end
local fields = redis.call('HGETALL', key)
local others = 0
for j = 1, #fields, 2 do
  local f = fields[j]
  if dead[f] then
    redis.call('HDEL', key, f)
  elseif f ~= self then
    others = others + tonumber(fields[j + 1])
  end
end
if count > 0 then
  redis.call('HSET', key, self, count)
  redis.call('PEXPIRE', key, ARGV[3])
else
  redis.call('HDEL', key, self)
end
return others
`)

// leaseScript keeps the fleet's leases: a sorted set of instance ids
// scored by the time (Redis's clock, in milliseconds) their lease ends.
//
//	KEYS[1]   the lease set
//	ARGV[1]   this instance's id
//	ARGV[2]   lease TTL in milliseconds
//	ARGV[3]   "register" (add the lease), "renew" (extend it if it is
//	          still live) or "expire" (end it now: a goodbye)
//	ARGV[4]   how long, in milliseconds, ended leases are kept listed
//	ARGV[5]   the most dead ids to return
//
// It returns {live, dead}: live is 1 when the lease is (now) live and 0
// when a renewal found it ended or gone, so the instance's counts may
// have been dropped; dead lists the ids whose lease ended, at most
// ARGV[4] ms ago. Older entries are removed.
var leaseScript = redis.NewScript(`
local set, id, ttl, mode = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local keep = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = 1
if mode == 'expire' then
  redis.call('ZADD', set, now - 1, id)
  live = 0
elseif mode == 'renew' then
  local s = redis.call('ZSCORE', set, id)
  if not s or tonumber(s) < now then live = 0 end
end
if live == 1 then
  redis.call('ZADD', set, now + ttl, id)
end
redis.call('ZREMRANGEBYSCORE', set, '-inf', now - keep)
redis.call('PEXPIRE', set, keep + ttl)
local dead = redis.call('ZRANGEBYSCORE', set, now - keep, '(' .. now, 'LIMIT', 0, tonumber(ARGV[5]))
return {live, dead}
`)

// scripts are loaded together when Redis may have lost its script cache.
var scripts = []*redis.Script{acquireScript, releaseScript, syncScript, leaseScript}
