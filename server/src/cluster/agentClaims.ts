/**
 * Presence shared by every node, in Redis: which agents are online (and on which nodes), their chosen
 * status, pools and last assignment, and which request holds each one. Claiming an agent to ring is one
 * Lua script, so two nodes never ring the same agent and least-recently-assigned order holds cluster-wide.
 *
 * Keys (after the prefix):
 * - `agent:<id>`: hash { name, pools (JSON array), chosen, last (epoch ms, '' = never), held (request id, '' = free),
 *   holder (the node that took or last confirmed the hold) }
 * - `agent-nodes:<id>`: the nodes with a socket for the agent; online = not empty
 * - `pool-free:<pool>`: sorted set of the pool's agents free to ring: online, chosen available, not held;
 *   score = last assignment (never = -inf), so the first member is the one to ring (ties by id, as in routing)
 * - `pool-agents:<pool>`: every agent registered in the pool, for views
 * - `request-agent:<request>`: the agent a request holds (at most one)
 * - `node-agents:<node>`, `node-alive:<node>` (expires), `nodes`: who registered what, and who is still alive
 * - `visitor-nodes:<id>`, `node-visitors:<node>`: the nodes with a socket for a visitor, and the reverse
 * - `node-holds:<node>`: the requests whose holds the node took; `orphan-holds`: those whose node died
 * - `queue:<pool>`: the pool's queued requests of every node, by when each was made (channel `queue-changes`
 *   names a pool whose line changed); `node-queued:<node>` and `orphan-queued`: hashes request → pool of the
 *   places a node wrote, and of those whose node died; `queued-node`: request → the node that wrote its place
 * - `lost-people`: `agent:<id>` / `visitor:<id>` whose last socket was on a node that died
 * - `node-swept:<node>` (expires): the node was taken for dead; it finds out at its next heartbeat
 * - `presence-seq`: a counter every script takes a number from; channel `presence` carries `{ seq, agents }`
 *
 * A node that dies cannot say its sockets are gone. Each node renews `node-alive:<node>` on a heartbeat,
 * and every heartbeat also sweeps, in the same script: a node in `nodes` whose alive key has expired has its
 * registrations removed (its agents' `agent-nodes` lose it, its visitors' `visitor-nodes` too), and each
 * person left with no socket on any node goes into `lost-people`. A node that takes on people (its
 * connections listen, `onPeopleLost`) pops a batch of them at each heartbeat and puts each through the grace
 * a closing socket would start: the connection machine decides what follows, as on one node.
 *
 * Holds belong to requests: the node that takes a dead node's request over finds its hold still there, and
 * holds it again (which makes the hold its own). A hold whose node died goes to `orphan-holds`, and is let go
 * once nobody runs its request or will: the request is not in `live-requests` and nobody holds
 * `lease:<request>` (ownership.ts, lease.ts). That covers a node that died between a request's end and the
 * release of its agent, and is safe against a live node: a request that is still live keeps its hold for
 * whoever runs it next, and a node taken for dead by mistake (a long stall) holds it again at its next
 * heartbeat. A dead node's queue places go the same way, announced on `queue-changes` for the lines to be
 * counted again. A node that finds it was swept registers its agents and visitors again (its holds were kept)
 * and tells its listeners (`onRejoined`), whose people then take up their sessions again.
 *
 * Redis that lost its data (see `EPOCH_LUA`) lost presence too. Each node remembers what it registered
 * (agents and visitors with sockets here, holds of requests it runs) and puts it back as soon as it sees the
 * new keyspace; meanwhile claims and the release of orphaned holds wait out the grace, so a hold not yet put
 * back is never claimed by another request.
 */
import { compareForAssignment, type AgentInfo } from '@callchart/machines';
import type { Redis } from 'ioredis';
import type { ChosenStatus } from '../presence.ts';
import { createSubscriber, EPOCH_LUA, KeyspaceEpoch, type RedisKeys } from './redis.ts';

export interface AgentRegistration {
  id: string;
  name: string;
  pools: string[];
  /** Only used when Redis has no chosen status for the agent yet: the live one wins. */
  chosen: ChosenStatus;
  /** Only moves Redis's copy forward. */
  lastAssignedAt: number | null;
}

export interface PresenceSettings {
  /** How often a node renews its alive key and sweeps dead nodes. */
  heartbeatMs: number;
  /** How long a node's registrations outlive its last heartbeat. */
  nodeTtlMs: number;
  /** How long claims wait after Redis lost its data, for every node to put its holds back. */
  graceMs: number;
}

export const DEFAULT_PRESENCE_SETTINGS: PresenceSettings = { heartbeatMs: 1_500, nodeTtlMs: 5_000, graceMs: 5_000 };

/** `seq` numbers every change in the order Redis made them; notifications and views carry the same numbers. */
export type PresenceChange = { seq: number; agents: string[] } | { resync: true };

export interface PoolView {
  /** The last change the view includes. */
  seq: number;
  /** Every agent registered in the pool, in routing order (`compareForAssignment`). */
  agents: AgentInfo[];
}

export type HoldResult =
  | { held: true; seq: number }
  /** Another request holds the agent. */
  | { held: false; reason: 'busy'; seq: number }
  /** This request already holds another agent (a request holds one at a time). */
  | { held: false; reason: 'holding'; agentId: string; seq: number };

/** Someone whose last socket was on a node that died, with no socket on any node now. */
export interface LostPerson {
  kind: 'agent' | 'visitor';
  id: string;
}

/** What a heartbeat did besides renewing this node's alive key. */
export interface HeartbeatResult {
  /** Dead nodes whose registrations this heartbeat removed. */
  swept: string[];
  /** People of dead nodes this node takes on (told to `onPeopleLost` listeners too). */
  lost: LostPerson[];
  /** Holds and queue places of dead nodes' requests that nobody runs any more, let go. */
  released: number;
}

/** Claims are refused for a moment after Redis lost its data; try again after `retryInMs`. */
export class PresenceResyncError extends Error {
  override readonly name = 'PresenceResyncError';
  constructor(readonly retryInMs: number) {
    super(`presence is being put back after Redis lost its data; claims resume in ${retryInMs} ms`);
  }
}

export interface AgentClaimsOptions {
  redis: Redis;
  keys: RedisKeys;
  nodeId: string;
  settings?: Partial<PresenceSettings>;
  onError?: (error: unknown) => void;
}

/** How many people of dead nodes one heartbeat takes on; the rest wait for the next (this node's or another's). */
const LOST_PER_BEAT = 1_000;
/** How many orphaned holds one heartbeat looks at: each beat blocks Redis while it runs. */
const ORPHANS_PER_BEAT = 200;
const MAX_ID = 200;
const MAX_POOLS = 100;
const MAX_EXCLUDED = 1_000;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
// Ownership's names (ownership.ts, lease.ts): a dead node's hold is let go once its request is in neither.
const LIVE_REQUESTS = 'live-requests';
const LEASE = 'lease';

function id(kind: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID) {
    throw new TypeError(`${kind} must be a string of 1-${MAX_ID} characters, not ${JSON.stringify(value)}`);
  }
  return value;
}

function ids(kind: string, values: unknown, max: number): string[] {
  if (!Array.isArray(values) || values.length > max) throw new TypeError(`${kind} must be an array of at most ${max} ids`);
  return [...new Set(values.map((value) => id(kind, value)))];
}

/** The status, checked: a clear error names a bad one. */
export function chosenStatus(value: unknown): ChosenStatus {
  if (value !== 'available' && value !== 'away') throw new TypeError(`a chosen status is 'available' or 'away', not ${JSON.stringify(value)}`);
  return value;
}

function epochMs(kind: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${kind} must be a whole, non-negative number of epoch milliseconds, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** The registration, checked: a clear error names what is wrong with it. */
export function registration(agent: AgentRegistration): AgentRegistration {
  if (typeof agent !== 'object' || agent === null) throw new TypeError('an agent registration must be an object');
  if (typeof agent.name !== 'string' || agent.name.length > MAX_ID) throw new TypeError(`an agent's name must be a string of at most ${MAX_ID} characters`);
  return {
    id: id('an agent id', agent.id),
    name: agent.name,
    pools: ids('pools', agent.pools, MAX_POOLS),
    chosen: chosenStatus(agent.chosen),
    lastAssignedAt: agent.lastAssignedAt === null ? null : epochMs('lastAssignedAt', agent.lastAssignedAt),
  };
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`presence ${name} must be a whole number of milliseconds above 0, not ${String(value)}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Scripts. Every script that changes presence takes KEYS = epoch keys + the seq counter and
// ARGV = epoch args, prefix, node id, then its own arguments from ARGV[6]; it answers {epoch, seq, result}.

const HEADER_LUA = `${EPOCH_LUA}
local P = ARGV[4]
local node = ARGV[5]
local seq = redis.call('INCR', KEYS[4])
local function agent_key(id) return P .. 'agent:' .. id end
local function nodes_key(id) return P .. 'agent-nodes:' .. id end
local function free_key(pool) return P .. 'pool-free:' .. pool end
local function members_key(pool) return P .. 'pool-agents:' .. pool end
local function request_key(rid) return P .. 'request-agent:' .. rid end
local function visitor_nodes_key(id) return P .. 'visitor-nodes:' .. id end
local function holds_key(n) return P .. 'node-holds:' .. n end
local ORPHANS = P .. 'orphan-holds'
local ORPHAN_PLACES = P .. 'orphan-queued'
local PLACE_NODE = P .. 'queued-node'
local function places_key(n) return P .. 'node-queued:' .. n end
local function pools_of(id)
  local raw = redis.call('HGET', agent_key(id), 'pools')
  if not raw then return {} end
  return cjson.decode(raw)
end
local function is_free(id)
  local f = redis.call('HMGET', agent_key(id), 'chosen', 'held')
  return f[1] == 'available' and (not f[2] or f[2] == '') and redis.call('SCARD', nodes_key(id)) > 0
end
-- Keeps the agent in its pools' free sets exactly while it is free, at its place in routing order.
local function refresh(id)
  local last = redis.call('HGET', agent_key(id), 'last')
  local score = (last and last ~= '') and last or '-inf'
  local free = is_free(id)
  for _, pool in ipairs(pools_of(id)) do
    if free then redis.call('ZADD', free_key(pool), score, id) else redis.call('ZREM', free_key(pool), id) end
  end
end
local changes = {}
local function changed(id)
  refresh(id)
  changes[#changes + 1] = id
end
-- The hold of request rid on agent id is this node's from now on: if this node dies, it is looked after.
local function own_hold(id, rid)
  local before = redis.call('HGET', agent_key(id), 'holder')
  if before and before ~= '' and before ~= node then redis.call('SREM', holds_key(before), rid) end
  redis.call('HSET', agent_key(id), 'holder', node)
  redis.call('SADD', holds_key(node), rid)
  redis.call('SREM', ORPHANS, rid)
end
-- The hold is gone: no node keeps a record of it any more.
local function forget_hold(id, rid)
  local holder = redis.call('HGET', agent_key(id), 'holder')
  if holder and holder ~= '' then redis.call('SREM', holds_key(holder), rid) end
  redis.call('HDEL', agent_key(id), 'holder')
  redis.call('SREM', ORPHANS, rid)
end
-- The queue place of request rid (in pool) is this node's from now on, as own_hold is for holds.
local function own_place(rid, pool)
  local before = redis.call('HGET', PLACE_NODE, rid)
  if before and before ~= node then redis.call('HDEL', places_key(before), rid) end
  redis.call('HSET', PLACE_NODE, rid, node)
  redis.call('HSET', places_key(node), rid, pool)
  redis.call('HDEL', ORPHAN_PLACES, rid)
end
local function forget_place(rid)
  local before = redis.call('HGET', PLACE_NODE, rid)
  if before then redis.call('HDEL', places_key(before), rid) end
  redis.call('HDEL', PLACE_NODE, rid)
  redis.call('HDEL', ORPHAN_PLACES, rid)
end
local function describe(id)
  local f = redis.call('HMGET', agent_key(id), 'name', 'pools', 'last')
  return {id, f[1] or '', f[2] or '[]', f[3] or ''}
end
local function finish(result)
  if #changes > 0 then
    redis.call('PUBLISH', P .. 'presence', '{"seq":' .. seq .. ',"agents":' .. cjson.encode(changes) .. '}')
  end
  return {epoch, seq, result}
end
`;

// ARGV[6..11]: id, name, pools JSON, chosen, last ('' = never), nodeTtlMs
const ONLINE_LUA = `${HEADER_LUA}
local id = ARGV[6]
local key = agent_key(id)
local pools = cjson.decode(ARGV[8])
local keep = {}
for _, pool in ipairs(pools) do keep[pool] = true end
for _, pool in ipairs(pools_of(id)) do
  if not keep[pool] then
    redis.call('ZREM', free_key(pool), id)
    redis.call('SREM', members_key(pool), id)
  end
end
redis.call('HSET', key, 'name', ARGV[7], 'pools', ARGV[8])
redis.call('HSETNX', key, 'chosen', ARGV[9])
local last = redis.call('HGET', key, 'last')
if ARGV[10] ~= '' and (not last or last == '' or tonumber(ARGV[10]) > tonumber(last)) then
  redis.call('HSET', key, 'last', ARGV[10])
end
for _, pool in ipairs(pools) do redis.call('SADD', members_key(pool), id) end
redis.call('SADD', nodes_key(id), node)
redis.call('SADD', P .. 'node-agents:' .. node, id)
redis.call('SADD', P .. 'nodes', node)
redis.call('SET', P .. 'node-alive:' .. node, '1', 'PX', ARGV[11])
changed(id)
return finish('online')
`;

// ARGV[6]: id
const OFFLINE_LUA = `${HEADER_LUA}
local id = ARGV[6]
redis.call('SREM', P .. 'node-agents:' .. node, id)
if redis.call('SREM', nodes_key(id), node) == 1 then changed(id) end
return finish('offline')
`;

// ARGV[6..7]: id, chosen
const CHOSEN_LUA = `${HEADER_LUA}
local id = ARGV[6]
if redis.call('HGET', agent_key(id), 'chosen') ~= ARGV[7] then
  redis.call('HSET', agent_key(id), 'chosen', ARGV[7])
  changed(id)
end
return finish('chosen')
`;

// ARGV[6]: id
const FORGET_LUA = `${HEADER_LUA}
local id = ARGV[6]
local key = agent_key(id)
if redis.call('EXISTS', key) == 0 then return finish('unknown') end
for _, pool in ipairs(pools_of(id)) do
  redis.call('ZREM', free_key(pool), id)
  redis.call('SREM', members_key(pool), id)
end
for _, n in ipairs(redis.call('SMEMBERS', nodes_key(id))) do redis.call('SREM', P .. 'node-agents:' .. n, id) end
redis.call('DEL', nodes_key(id))
local held = redis.call('HGET', key, 'held')
if held and held ~= '' then
  forget_hold(id, held)
  if redis.call('GET', request_key(held)) == id then redis.call('DEL', request_key(held)) end
end
redis.call('DEL', key)
changes[#changes + 1] = id
return finish('forgotten')
`;

// ARGV[6..8]: id, request id, '1' when the hold is a fresh claim (refused during the grace)
const HOLD_LUA = `${HEADER_LUA}
local id = ARGV[6]
local rid = ARGV[7]
local held = redis.call('HGET', agent_key(id), 'held')
if held and held ~= '' and held ~= rid then return finish({'busy'}) end
local current = redis.call('GET', request_key(rid))
if current and current ~= id then return finish({'holding', current}) end
if held ~= rid and ARGV[8] == '1' then
  local grace = redis.call('PTTL', KEYS[3])
  if grace > 0 then return finish({'grace', grace}) end
end
if held ~= rid then
  redis.call('HSET', agent_key(id), 'held', rid)
  redis.call('SET', request_key(rid), id)
  changed(id)
end
own_hold(id, rid)
return finish({'held'})
`;

// ARGV[6..]: pool, request id, excluded agent ids...
const CLAIM_LUA = `${HEADER_LUA}
local rid = ARGV[7]
local current = redis.call('GET', request_key(rid))
if current then
  own_hold(current, rid)
  return finish({'holding', describe(current)})
end
local grace = redis.call('PTTL', KEYS[3])
if grace > 0 then return finish({'grace', grace}) end
local excluded = {}
for i = 8, #ARGV do excluded[ARGV[i]] = true end
-- Every member is free; among the first (excluded + 1) at least one is not excluded, if there are that many.
for _, id in ipairs(redis.call('ZRANGE', free_key(ARGV[6]), 0, #ARGV - 7)) do
  if not excluded[id] then
    redis.call('HSET', agent_key(id), 'held', rid)
    redis.call('SET', request_key(rid), id)
    own_hold(id, rid)
    changed(id)
    return finish({'claimed', describe(id)})
  end
end
return finish({'none'})
`;

// ARGV[6..7]: id, request id
const RELEASE_LUA = `${HEADER_LUA}
local id = ARGV[6]
local rid = ARGV[7]
if redis.call('HGET', agent_key(id), 'held') ~= rid then return finish(0) end
redis.call('HSET', agent_key(id), 'held', '')
forget_hold(id, rid)
if redis.call('GET', request_key(rid)) == id then redis.call('DEL', request_key(rid)) end
changed(id)
return finish(1)
`;

// ARGV[6..7]: id, at
const ASSIGNED_LUA = `${HEADER_LUA}
local id = ARGV[6]
local last = redis.call('HGET', agent_key(id), 'last')
if last and last ~= '' and tonumber(last) >= tonumber(ARGV[7]) then return finish(0) end
redis.call('HSET', agent_key(id), 'last', ARGV[7])
changed(id)
return finish(1)
`;

// ARGV[6..8]: pool, request id, when it was made (epoch ms): the request joins the pool's cluster-wide line.
const QUEUE_JOIN_LUA = `${HEADER_LUA}
redis.call('ZADD', P .. 'queue:' .. ARGV[6], ARGV[8], ARGV[7])
own_place(ARGV[7], ARGV[6])
redis.call('PUBLISH', P .. 'queue-changes', ARGV[6])
return finish('joined')
`;

// ARGV[6..7]: pool, request id
const QUEUE_LEAVE_LUA = `${HEADER_LUA}
redis.call('ZREM', P .. 'queue:' .. ARGV[6], ARGV[7])
forget_place(ARGV[7])
redis.call('PUBLISH', P .. 'queue-changes', ARGV[6])
return finish('left')
`;

// ARGV[6..7]: visitor id, nodeTtlMs (a visitor with a socket here) or '' (none here any more)
const VISITOR_LUA = `${HEADER_LUA}
local id = ARGV[6]
if ARGV[7] == '' then
  redis.call('SREM', visitor_nodes_key(id), node)
  redis.call('SREM', P .. 'node-visitors:' .. node, id)
  return finish('gone')
end
redis.call('SADD', visitor_nodes_key(id), node)
redis.call('SADD', P .. 'node-visitors:' .. node, id)
redis.call('SADD', P .. 'nodes', node)
redis.call('SET', P .. 'node-alive:' .. node, '1', 'PX', ARGV[7])
return finish('here')
`;

// ARGV[6..10]: nodeTtlMs, how many lost people this node takes on (0: none), how many orphaned holds (and
// queue places) it looks at, the live-requests key, the prefix of lease keys. Answers {was this node's alive
// key still there, was it swept, swept nodes, lost people, holds and places let go}.
const HEARTBEAT_LUA = `${HEADER_LUA}
local LOST = P .. 'lost-people'
local function nobody_runs(rid) return redis.call('SISMEMBER', ARGV[9], rid) == 0 and redis.call('EXISTS', ARGV[10] .. rid) == 0 end
local alive = redis.call('EXISTS', P .. 'node-alive:' .. node)
local swept_here = redis.call('DEL', P .. 'node-swept:' .. node)
redis.call('SET', P .. 'node-alive:' .. node, '1', 'PX', ARGV[6])
redis.call('SADD', P .. 'nodes', node)
local swept = {}
for _, n in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if n ~= node and redis.call('EXISTS', P .. 'node-alive:' .. n) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'node-agents:' .. n)) do
      if redis.call('SREM', nodes_key(id), n) == 1 then changed(id) end
      if redis.call('SCARD', nodes_key(id)) == 0 then redis.call('SADD', LOST, 'agent:' .. id) end
    end
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'node-visitors:' .. n)) do
      redis.call('SREM', visitor_nodes_key(id), n)
      if redis.call('SCARD', visitor_nodes_key(id)) == 0 then redis.call('SADD', LOST, 'visitor:' .. id) end
    end
    if redis.call('EXISTS', holds_key(n)) == 1 then redis.call('SUNIONSTORE', ORPHANS, ORPHANS, holds_key(n)) end
    local places = redis.call('HGETALL', places_key(n))
    for i = 1, #places, 2 do redis.call('HSET', ORPHAN_PLACES, places[i], places[i + 1]) end
    redis.call('DEL', P .. 'node-agents:' .. n, P .. 'node-visitors:' .. n, holds_key(n), places_key(n))
    redis.call('SREM', P .. 'nodes', n)
    -- A node only stalled finds this at its next heartbeat, and registers everything again.
    redis.call('SET', P .. 'node-swept:' .. n, '1', 'PX', 86400000)
    swept[#swept + 1] = n
  end
end
-- People who came back on some node since are not lost any more.
local lost = {}
if tonumber(ARGV[7]) > 0 then
  for _, who in ipairs(redis.call('SPOP', LOST, ARGV[7])) do
    local kind, id = string.match(who, '^(%a+):(.*)$')
    local sockets = kind == 'agent' and nodes_key(id) or visitor_nodes_key(id)
    if redis.call('SCARD', sockets) == 0 then lost[#lost + 1] = who end
  end
end
-- A dead node's holds go once nobody runs their request or will. Not while Redis is being put back after
-- losing its data: a live request's record may not be back yet.
local let_go = 0
if redis.call('PTTL', KEYS[3]) <= 0 then
  for _, rid in ipairs(redis.call('SRANDMEMBER', ORPHANS, ARGV[8])) do
    local id = redis.call('GET', request_key(rid))
    if not id then
      redis.call('SREM', ORPHANS, rid)
    elseif nobody_runs(rid) then
      if redis.call('HGET', agent_key(id), 'held') == rid then
        redis.call('HSET', agent_key(id), 'held', '')
        forget_hold(id, rid)
        changed(id)
      end
      redis.call('DEL', request_key(rid))
      redis.call('SREM', ORPHANS, rid)
      let_go = let_go + 1
    end
  end
  local places = redis.call('HRANDFIELD', ORPHAN_PLACES, ARGV[8], 'WITHVALUES')
  for i = 1, #places, 2 do
    local rid, pool = places[i], places[i + 1]
    if nobody_runs(rid) then
      if redis.call('ZREM', P .. 'queue:' .. pool, rid) == 1 then redis.call('PUBLISH', P .. 'queue-changes', pool) end
      forget_place(rid)
      let_go = let_go + 1
    end
  end
end
return finish({alive, swept_here, swept, lost, let_go})
`;

// Read-only. KEYS[1] = seq counter; ARGV: prefix, pool. Answers {seq, {id, name, pools, chosen, last, held, nodes}...}.
const VIEW_LUA = `
local P = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'pool-agents:' .. ARGV[2])) do
  local f = redis.call('HMGET', P .. 'agent:' .. id, 'name', 'pools', 'chosen', 'last', 'held')
  out[#out + 1] = {id, f[1] or '', f[2] or '[]', f[3] or '', f[4] or '', f[5] or '', redis.call('SCARD', P .. 'agent-nodes:' .. id)}
end
return {redis.call('GET', KEYS[1]) or '0', out}
`;

// Read-only. KEYS[1] = seq counter; ARGV: prefix, pool, limit, excluded... Answers {seq, {id, name, pools, last}...}.
const SHORTLIST_LUA = `
local P = ARGV[1]
local excluded = {}
for i = 4, #ARGV do excluded[ARGV[i]] = true end
local out = {}
local limit = tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGE', P .. 'pool-free:' .. ARGV[2], 0, limit + #ARGV - 4)) do
  if not excluded[id] and #out < limit then
    local f = redis.call('HMGET', P .. 'agent:' .. id, 'name', 'pools', 'last')
    out[#out + 1] = {id, f[1] or '', f[2] or '[]', f[3] or ''}
  end
end
return {redis.call('GET', KEYS[1]) or '0', out}
`;

const WRITE_SCRIPTS = {
  presenceOnline: ONLINE_LUA,
  presenceOffline: OFFLINE_LUA,
  presenceChosen: CHOSEN_LUA,
  presenceForget: FORGET_LUA,
  presenceHold: HOLD_LUA,
  presenceClaim: CLAIM_LUA,
  presenceRelease: RELEASE_LUA,
  presenceAssigned: ASSIGNED_LUA,
  presenceHeartbeat: HEARTBEAT_LUA,
  presenceVisitor: VISITOR_LUA,
  presenceQueueJoin: QUEUE_JOIN_LUA,
  presenceQueueLeave: QUEUE_LEAVE_LUA,
} as const;
type WriteScript = keyof typeof WRITE_SCRIPTS;
type Reply = [epoch: string, seq: number, result: unknown];
type ScriptClient = Redis & Record<WriteScript | 'presenceView' | 'presenceShortlist', (...args: string[]) => Promise<unknown>>;

function withScripts(redis: Redis): ScriptClient {
  const client = redis as ScriptClient;
  if (typeof client.presenceClaim !== 'function') {
    for (const [name, lua] of Object.entries(WRITE_SCRIPTS)) redis.defineCommand(name, { numberOfKeys: 4, lua });
    redis.defineCommand('presenceView', { numberOfKeys: 1, lua: VIEW_LUA, readOnly: true });
    redis.defineCommand('presenceShortlist', { numberOfKeys: 1, lua: SHORTLIST_LUA, readOnly: true });
  }
  return client;
}

function parsePools(raw: string): string[] {
  try {
    const pools: unknown = JSON.parse(raw);
    return Array.isArray(pools) ? pools.filter((pool): pool is string => typeof pool === 'string') : [];
  } catch {
    return [];
  }
}

const lastOf = (raw: string): number | null => (raw === '' ? null : Number(raw));

/** An agent as a claim or shortlist answers it: `[id, name, pools, last]`. */
function described([agentId, name, pools, last]: string[], status: AgentInfo['status']): AgentInfo {
  return { id: agentId!, name: name!, pools: parsePools(pools!), status, lastAssignedAt: lastOf(last!) };
}

/** Presence and agent claims for one node. */
export class AgentClaims {
  readonly settings: PresenceSettings;
  readonly nodeId: string;
  private readonly redis: ScriptClient;
  private readonly epoch: KeyspaceEpoch;
  /** What this node registered, to put back if Redis loses it (or another node took this one for dead). */
  private readonly mine = { online: new Map<string, AgentRegistration>(), holds: new Map<string, string>(), visitors: new Set<string>() };
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private readonly lostListeners = new Set<(people: LostPerson[]) => void>();
  private readonly rejoinListeners = new Set<() => void>();
  private subscriber: Redis | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private replaying: Promise<void> | null = null;
  private replayAgain = false;
  private replayHolds = false;
  private readonly onReady = () => void this.heartbeat().catch((error: unknown) => this.report(error));

  constructor(private readonly options: AgentClaimsOptions) {
    if (!NODE_ID.test(options.nodeId)) throw new TypeError(`a node id must be 1-64 letters, digits or ._-, not ${JSON.stringify(options.nodeId)}`);
    this.nodeId = options.nodeId;
    const settings = { ...DEFAULT_PRESENCE_SETTINGS, ...options.settings };
    for (const [name, value] of Object.entries(settings)) positive(name, value);
    if (settings.heartbeatMs * 2 > settings.nodeTtlMs) throw new RangeError('presence heartbeatMs must be at most half of nodeTtlMs');
    this.settings = settings;
    this.redis = withScripts(options.redis);
    this.epoch = new KeyspaceEpoch(settings.graceMs);
  }

  /**
   * Starts the heartbeat (and the sweep of dead nodes) and the change notifications. Resolves once
   * subscribed; rejects after `timeoutMs` if Redis cannot be reached, while both go on trying.
   */
  async start({ timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.heartbeatTimer) return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch((error: unknown) => this.report(error)), this.settings.heartbeatMs);
    this.options.redis.on('ready', this.onReady);
    const subscriber = createSubscriber(this.options.redis, (error) => this.report(error));
    this.subscriber = subscriber;
    let connectedBefore = false;
    // After a reconnect the messages sent while it was down are lost: listeners re-read everything.
    subscriber.on('ready', () => {
      if (connectedBefore) this.emit({ resync: true });
      connectedBefore = true;
    });
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    const subscribed = subscriber.subscribe(this.options.keys.key('presence'));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`could not subscribe to presence changes within ${timeoutMs} ms`)), timeoutMs);
    });
    subscribed.catch((error: unknown) => this.report(error));
    try {
      await Promise.race([subscribed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    await this.heartbeat();
  }

  /** Stops the heartbeat and notifications; what this node registered lapses with its alive key. */
  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.options.redis.off('ready', this.onReady);
    const subscriber = this.subscriber;
    this.subscriber = null;
    if (subscriber) subscriber.disconnect();
  }

  /** Told of every change (on any node); returns the function that unsubscribes. */
  onChange(listener: (change: PresenceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Told of the people of dead nodes this node takes on, a batch at each heartbeat; returns the function that
   * unsubscribes. A node nobody listens to takes on nobody, and leaves them to the other nodes.
   */
  onPeopleLost(listener: (people: LostPerson[]) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /**
   * Told when a heartbeat finds this node was taken for dead (it stalled for longer than the node TTL): what
   * it registered is put back, and the people with sockets here may have been told lost meanwhile.
   */
  onRejoined(listener: () => void): () => void {
    this.rejoinListeners.add(listener);
    return () => this.rejoinListeners.delete(listener);
  }

  /** The visitor has a socket on this node (true), or no more (false): so that a dead node's visitors are known. */
  async visitorHere(visitorId: string, here: boolean): Promise<{ seq: number }> {
    id('a visitor id', visitorId);
    if (here) this.mine.visitors.add(visitorId);
    else this.mine.visitors.delete(visitorId);
    const [seq] = await this.run('presenceVisitor', [visitorId, here ? String(this.settings.nodeTtlMs) : '']);
    return { seq };
  }

  /** The agent has a socket on this node. */
  async online(agent: AgentRegistration): Promise<{ seq: number }> {
    const checked = registration(agent);
    const known = this.mine.online.get(checked.id);
    this.mine.online.set(checked.id, known ? { ...checked, chosen: known.chosen, lastAssignedAt: later(known.lastAssignedAt, checked.lastAssignedAt) } : checked);
    const [seq] = await this.run('presenceOnline', [
      checked.id,
      checked.name,
      JSON.stringify(checked.pools),
      checked.chosen,
      checked.lastAssignedAt === null ? '' : String(checked.lastAssignedAt),
      String(this.settings.nodeTtlMs),
    ]);
    return { seq };
  }

  /** The agent's last socket on this node is gone; it stays online while another node has one. */
  async offline(agentId: string): Promise<{ seq: number }> {
    id('an agent id', agentId);
    this.mine.online.delete(agentId);
    const [seq] = await this.run('presenceOffline', [agentId]);
    return { seq };
  }

  async setChosen(agentId: string, chosen: ChosenStatus): Promise<{ seq: number }> {
    id('an agent id', agentId);
    chosenStatus(chosen);
    const known = this.mine.online.get(agentId);
    if (known) known.chosen = chosen;
    const [seq] = await this.run('presenceChosen', [agentId, chosen]);
    return { seq };
  }

  /** Logging out: the agent leaves presence everywhere, with any hold on it. */
  async forget(agentId: string): Promise<{ seq: number }> {
    id('an agent id', agentId);
    this.mine.online.delete(agentId);
    for (const [requestId, held] of this.mine.holds) if (held === agentId) this.mine.holds.delete(requestId);
    const [seq] = await this.run('presenceForget', [agentId]);
    return { seq };
  }

  /**
   * Holds a given agent for the request, whatever its status (a ring or call restored from the store),
   * unless another request holds it. Holding it again is harmless. A `fresh` hold claims the agent anew (a
   * ring the routing machine chose): like `claim`, it waits out the grace after Redis lost its data, when
   * another request's hold on the agent may not be back yet.
   */
  async hold(agentId: string, requestId: string, { fresh = false }: { fresh?: boolean } = {}): Promise<HoldResult> {
    id('an agent id', agentId);
    id('a request id', requestId);
    const [seq, result] = await this.run('presenceHold', [agentId, requestId, fresh ? '1' : '0']);
    const [outcome, other] = result as [string, string | number | undefined];
    if (outcome === 'grace') throw new PresenceResyncError(Number(other));
    if (outcome === 'held') {
      this.mine.holds.set(requestId, agentId);
      return { held: true, seq };
    }
    return outcome === 'busy' ? { held: false, reason: 'busy', seq } : { held: false, reason: 'holding', agentId: String(other), seq };
  }

  /**
   * Holds the least recently assigned free agent of the pool not in `excludeAgentIds`, and answers it (or
   * null: nobody free). A request that already holds an agent gets that one back: a claim retried after a
   * lost answer never holds a second.
   */
  async claim(pool: string, requestId: string, excludeAgentIds: readonly string[] = []): Promise<{ agent: AgentInfo | null; seq: number }> {
    id('a pool', pool);
    id('a request id', requestId);
    const excluded = ids('excluded agent ids', excludeAgentIds, MAX_EXCLUDED);
    const [seq, result] = await this.run('presenceClaim', [pool, requestId, ...excluded]);
    const [outcome, detail] = result as [string, unknown];
    if (outcome === 'grace') throw new PresenceResyncError(Number(detail));
    if (outcome === 'none') return { agent: null, seq };
    const agent = described(detail as string[], 'busy');
    this.mine.holds.set(requestId, agent.id);
    return { agent, seq };
  }

  /** Lets the agent go if this request holds it (true); a request that does not hold it changes nothing. */
  async release(agentId: string, requestId: string): Promise<{ released: boolean; seq: number }> {
    id('an agent id', agentId);
    id('a request id', requestId);
    if (this.mine.holds.get(requestId) === agentId) this.mine.holds.delete(requestId);
    const [seq, result] = await this.run('presenceRelease', [agentId, requestId]);
    return { released: result === 1, seq };
  }

  /** The request joins its pool's cluster-wide line (made at `createdAt`), or joins it again: harmless. */
  async queueJoin(pool: string, requestId: string, createdAt: number): Promise<void> {
    await this.run('presenceQueueJoin', [id('a pool', pool), id('a request id', requestId), String(epochMs('createdAt', createdAt))]);
  }

  /** The request leaves its pool's line; every node is told to count its places again. */
  async queueLeave(pool: string, requestId: string): Promise<void> {
    await this.run('presenceQueueLeave', [id('a pool', pool), id('a request id', requestId)]);
  }

  /** The agent the request holds in Redis now, if any: a node taking a request over learns what it holds. */
  async heldBy(requestId: string): Promise<string | null> {
    return this.options.redis.get(this.options.keys.key('request-agent', id('a request id', requestId)));
  }

  /** The connection and key names this node's presence uses, for state kept beside it (queue places). */
  get connection(): Redis {
    return this.options.redis;
  }

  get keys(): RedisKeys {
    return this.options.keys;
  }

  /** The request moved to another node, which holds its agent from now on; this node keeps no record of it. */
  disown(requestId: string): void {
    this.mine.holds.delete(id('a request id', requestId));
  }

  /** The agent was given a call at `at`; an older time than Redis has changes nothing. */
  async assigned(agentId: string, at: number): Promise<{ seq: number }> {
    id('an agent id', agentId);
    epochMs('at', at);
    const known = this.mine.online.get(agentId);
    if (known) known.lastAssignedAt = later(known.lastAssignedAt, at);
    const [seq] = await this.run('presenceAssigned', [agentId, String(at)]);
    return { seq };
  }

  /** Every agent registered in the pool with its status, in routing order: for the UI and for routing. */
  async view(pool: string): Promise<PoolView> {
    id('a pool', pool);
    const [seq, rows] = (await this.redis.presenceView(this.options.keys.key('presence-seq'), this.options.keys.prefix, pool)) as [string, string[][]];
    const agents = rows.map(([agentId, name, pools, chosen, last, held, nodes]): AgentInfo => {
      const status: AgentInfo['status'] = Number(nodes) === 0 ? 'offline' : held !== '' ? 'busy' : chosen === 'away' ? 'away' : 'available';
      return { id: agentId!, name: name!, pools: parsePools(pools!), status, lastAssignedAt: lastOf(last!) };
    });
    return { seq: Number(seq), agents: agents.sort(compareForAssignment) };
  }

  /** The first `limit` free agents of the pool not excluded, in the order claims would take them. */
  async shortlist(pool: string, excludeAgentIds: readonly string[] = [], limit = 16): Promise<PoolView> {
    id('a pool', pool);
    const excluded = ids('excluded agent ids', excludeAgentIds, MAX_EXCLUDED);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000) throw new RangeError(`a shortlist holds 1-1000 agents, not ${String(limit)}`);
    const [seq, rows] = (await this.redis.presenceShortlist(
      this.options.keys.key('presence-seq'),
      this.options.keys.prefix,
      pool,
      String(limit),
      ...excluded,
    )) as [string, string[][]];
    return { seq: Number(seq), agents: rows.map((row) => described(row, 'available')) };
  }

  /**
   * Renews this node's alive key, sweeps dead nodes, takes on a batch of their people (while someone listens)
   * and lets go of their holds that nobody runs; runs on the heartbeat, callable for tests and drains.
   */
  async heartbeat(): Promise<HeartbeatResult> {
    const taking = this.lostListeners.size > 0 ? LOST_PER_BEAT : 0;
    const [, result] = await this.run('presenceHeartbeat', [
      String(this.settings.nodeTtlMs),
      String(taking),
      String(ORPHANS_PER_BEAT),
      this.options.keys.key(LIVE_REQUESTS),
      this.options.keys.key(LEASE, ''),
    ]);
    const [alive, sweptHere, swept, lostRaw, released] = result as [number, number, string[], string[], number];
    const registered = this.mine.online.size + this.mine.visitors.size > 0;
    // Swept as dead after a stall (or its key lapsed): its agents and visitors are gone, and go back. Its holds
    // are not: they stay while their requests are live. Held again now, a hold of a request another node took
    // over meanwhile would be recorded as this node's again.
    if (sweptHere === 1 || (alive === 0 && registered)) this.replay({ holds: false });
    if (sweptHere === 1) for (const listener of this.rejoinListeners) this.guarded(() => listener());
    const lost = lostRaw.map(lostPerson).filter((person): person is LostPerson => person !== null);
    if (lost.length > 0) for (const listener of this.lostListeners) this.guarded(() => listener(lost));
    return { swept, lost, released: Number(released) };
  }

  private async run(script: WriteScript, args: string[]): Promise<[seq: number, result: unknown]> {
    const [epoch, seq, result] = (await this.redis[script](
      ...this.options.keys.epochKeys,
      this.options.keys.key('presence-seq'),
      ...this.epoch.args(),
      this.options.keys.prefix,
      this.nodeId,
      ...args,
    )) as Reply;
    if (this.epoch.observe(epoch)) this.replay({ holds: true });
    return [Number(seq), result];
  }

  /**
   * Puts back what this node registered: its agents and visitors, and with `holds` the holds of its requests
   * too. A replay asked for while one runs runs again after it.
   */
  private replay({ holds: withHolds }: { holds: boolean }): void {
    this.replayHolds ||= withHolds;
    if (this.replaying) {
      this.replayAgain = true;
      return;
    }
    this.replaying = (async () => {
      do {
        this.replayAgain = false;
        const online = [...this.mine.online.values()];
        const holds = this.replayHolds ? [...this.mine.holds] : [];
        this.replayHolds = false;
        const visitors = [...this.mine.visitors];
        const results = await Promise.allSettled([
          ...online.map((agent) => this.online(agent)),
          ...visitors.map((visitorId) => this.visitorHere(visitorId, true)),
          ...holds.map(async ([requestId, agentId]) => {
            const result = await this.hold(agentId, requestId);
            if (!result.held) throw new Error(`could not put back the hold of ${requestId} on ${agentId}: ${result.reason}`);
          }),
        ]);
        for (const result of results) if (result.status === 'rejected') this.report(result.reason);
      } while (this.replayAgain);
      this.emit({ resync: true });
    })().finally(() => (this.replaying = null));
  }

  private onMessage(message: string): void {
    let change: { seq?: unknown; agents?: unknown };
    try {
      change = JSON.parse(message) as typeof change;
    } catch (error) {
      return this.report(error);
    }
    const agents = Array.isArray(change.agents) ? change.agents.filter((agent): agent is string => typeof agent === 'string') : [];
    this.emit({ seq: Number(change.seq), agents });
  }

  private emit(change: PresenceChange): void {
    for (const listener of this.listeners) this.guarded(() => listener(change));
  }

  private guarded(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown): void {
    this.options.onError?.(error);
  }
}

/** `agent:<id>` or `visitor:<id>` as the sweep writes them. */
function lostPerson(raw: string): LostPerson | null {
  const colon = raw.indexOf(':');
  const kind = raw.slice(0, colon);
  return colon > 0 && (kind === 'agent' || kind === 'visitor') ? { kind, id: raw.slice(colon + 1) } : null;
}

function later(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}
