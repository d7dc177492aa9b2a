/**
 * Presence shared by every node, in Redis: which agents are online (and on which nodes), their chosen
 * status, pools and last assignment, and which request holds each one. Claiming an agent to ring is one
 * Lua script, so two nodes never ring the same agent and least-recently-assigned order holds cluster-wide.
 *
 * Keys (after the prefix):
 * - `agent:<id>`: hash { name, pools (JSON array), chosen, last (epoch ms, '' = never), held (request id, '' = free) }
 * - `agent-nodes:<id>`: the nodes with a socket for the agent; online = not empty
 * - `pool-free:<pool>`: sorted set of the pool's agents free to ring: online, chosen available, not held;
 *   score = last assignment (never = -inf), so the first member is the one to ring (ties by id, as in routing)
 * - `pool-agents:<pool>`: every agent registered in the pool, for views
 * - `request-agent:<request>`: the agent a request holds (at most one)
 * - `node-agents:<node>`, `node-alive:<node>` (expires), `nodes`: who registered what, and who is still alive
 * - `presence-seq`: a counter every script takes a number from; channel `presence` carries `{ seq, agents }`
 *
 * A node that dies cannot say its agents went offline. Each node renews `node-alive:<node>` on a heartbeat,
 * and every heartbeat also sweeps: a node in `nodes` whose alive key has expired has its registrations
 * removed (its agents' `agent-nodes` lose it). Holds belong to requests, not nodes: the node that takes a
 * dead node's request over finds its hold still there. A node that was swept by mistake (a long stall)
 * sees it at its next heartbeat and registers its agents again.
 *
 * Redis that lost its data (see `EPOCH_LUA`) lost presence too. Each node remembers what it registered
 * (agents online here, holds of requests it runs) and puts it back as soon as it sees the new keyspace;
 * meanwhile claims wait out the grace, so a hold not yet put back is never claimed by another request.
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

const MAX_ID = 200;
const MAX_POOLS = 100;
const MAX_EXCLUDED = 1_000;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

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
if held and held ~= '' and redis.call('GET', request_key(held)) == id then redis.call('DEL', request_key(held)) end
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
return finish({'held'})
`;

// ARGV[6..]: pool, request id, excluded agent ids...
const CLAIM_LUA = `${HEADER_LUA}
local rid = ARGV[7]
local current = redis.call('GET', request_key(rid))
if current then return finish({'holding', describe(current)}) end
local grace = redis.call('PTTL', KEYS[3])
if grace > 0 then return finish({'grace', grace}) end
local excluded = {}
for i = 8, #ARGV do excluded[ARGV[i]] = true end
-- Every member is free; among the first (excluded + 1) at least one is not excluded, if there are that many.
for _, id in ipairs(redis.call('ZRANGE', free_key(ARGV[6]), 0, #ARGV - 7)) do
  if not excluded[id] then
    redis.call('HSET', agent_key(id), 'held', rid)
    redis.call('SET', request_key(rid), id)
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

// ARGV[6]: nodeTtlMs. Answers {was this node still registered, swept nodes}.
const HEARTBEAT_LUA = `${HEADER_LUA}
local alive = redis.call('EXISTS', P .. 'node-alive:' .. node)
redis.call('SET', P .. 'node-alive:' .. node, '1', 'PX', ARGV[6])
redis.call('SADD', P .. 'nodes', node)
local swept = {}
for _, n in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if n ~= node and redis.call('EXISTS', P .. 'node-alive:' .. n) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'node-agents:' .. n)) do
      if redis.call('SREM', nodes_key(id), n) == 1 then changed(id) end
    end
    redis.call('DEL', P .. 'node-agents:' .. n)
    redis.call('SREM', P .. 'nodes', n)
    swept[#swept + 1] = n
  end
end
return finish({alive, swept})
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
  /** What this node registered, to put back if Redis loses it. */
  private readonly mine = { online: new Map<string, AgentRegistration>(), holds: new Map<string, string>() };
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private subscriber: Redis | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private replaying: Promise<void> | null = null;
  private replayAgain = false;
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

  /** Renews this node's alive key and sweeps dead nodes; runs on the heartbeat, callable for tests and drains. */
  async heartbeat(): Promise<{ swept: string[] }> {
    const [, result] = await this.run('presenceHeartbeat', [String(this.settings.nodeTtlMs)]);
    const [alive, swept] = result as [number, string[]];
    // Swept as dead after a stall: what this node registered is gone, and goes back.
    if (alive === 0 && this.mine.online.size > 0) this.replay();
    return { swept };
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
    if (this.epoch.observe(epoch)) this.replay();
    return [Number(seq), result];
  }

  /** Puts back everything this node registered; a replay asked for while one runs runs again after it. */
  private replay(): void {
    if (this.replaying) {
      this.replayAgain = true;
      return;
    }
    this.replaying = (async () => {
      do {
        this.replayAgain = false;
        const online = [...this.mine.online.values()];
        const holds = [...this.mine.holds];
        const results = await Promise.allSettled([
          ...online.map((agent) => this.online(agent)),
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
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.report(error);
      }
    }
  }

  private report(error: unknown): void {
    this.options.onError?.(error);
  }
}

function later(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}
