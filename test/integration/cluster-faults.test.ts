/**
 * The faults a cluster must survive, each on real processes: three node processes on one Postgres and one
 * Redis (Debian's, in temporary directories on loopback ports), every node reaching Redis through a link of
 * its own that a test can freeze. The scenarios share the cluster and run in order, each leaving it with no
 * live request: Redis restarted, Postgres restarted, an owner partitioned from Redis and healed, an owner
 * SIGKILLed (node 1 stays down), and a node drained with SIGTERM (node 2 goes too).
 *
 * Media is peer to peer and these clients have none: what a node's death can stop is signaling, so each
 * scenario shows that signaling still works (relays, ICE restarts, pause and resume, hang-up, timers) and
 * that the store keeps every row. The browser suite shows media flowing on through a node kill.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Redis } from 'ioredis';
import { RedisKeys } from '../../server/src/cluster/redis.ts';
import { FAST_CLUSTER_TIMINGS, RedisLink, startCluster, type Cluster, type ClusterNode, type Owner } from '../support/cluster.ts';
import { ClusterPeople, connectCall, emitWithin, expectIdle, lost, received, type CallDetail } from '../support/clusterClients.ts';
import { relay } from '../support/relay.ts';
import { accept, expectRung, hangUp, requestCall } from '../support/routing.ts';
import { SAMPLE_SDP, sleep, type TestClient } from '../support/server.ts';

const RING_TIMEOUT_MS = 6_000;
// Long enough that a ring outlives a takeover, and that no other timer fires on a loaded machine.
const TIMINGS = {
  RING_TIMEOUT_MS: String(RING_TIMEOUT_MS),
  MAX_QUEUE_WAIT_MS: '30000',
  AGENT_GRACE_MS: '25000',
  RECONNECTION_TIMEOUT_MS: '30000',
  RESUME_WINDOW_MS: '30000',
  // What an operator gives SIGTERM: room for the balancer to move traffic, and for the leases to move.
  DRAIN_MS: '2000',
};
const LEASE_TTL_MS = Number(FAST_CLUSTER_TIMINGS.LEASE_TTL_MS);
const LEASE_RENEW_MS = Number(FAST_CLUSTER_TIMINGS.LEASE_RENEW_MS);
/** A ring timeout that fires on a new owner must keep its original deadline, within this. */
const DEADLINE_TOLERANCE_MS = 500;
const OUTAGE_ANSWER_MS = 30_000;
const DRAIN_MS = Number(TIMINGS.DRAIN_MS);
/** What a drained node waits at most for its requests to be taken over (server.ts gives the hand-off this). */
const HAND_OFF_MS = 3 * LEASE_RENEW_MS + 500;
/** Beyond DRAIN_MS and the hand-off: the last commits, closing the sockets and the store, on a loaded machine. */
const EXIT_SLACK_MS = 3_000;
/** What a person would notice of a call or a ring: none of it may reach anyone while their node is drained. */
const NOTICES = ['call.paused', 'call.resumed', 'call.ended', 'call.accepted', 'agent.ring', 'agent.ringCancelled', 'routing.update', 'routing.ended', 'session.expired'];
const UP = { socket: 'up', media: 'connected' } as const;
const RECONNECTING = { socket: 'up', media: 'reconnecting' } as const;
const settle = () => sleep(500);

let cluster: Cluster;
let people: ClusterPeople;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, env: TIMINGS, redisLinks: true });
  [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  people = new ClusterPeople(cluster);
  await Promise.all((['ada', 'grace'] as const).map((agent) => people.agentToken(agent)));
}, 120_000);

// Longer than expectIdle's own bound, so a scenario that left something behind fails saying what.
afterEach(async () => {
  // A scenario that failed half-way must not leave a node cut off for the next one.
  for (const node of cluster.nodes) if (cluster.redisLink(node).state !== 'open') cluster.redisLink(node).heal();
  await people.closeAll();
  await expectIdle(cluster);
}, 30_000);

// Room for a node that hangs on its way out to be killed (cluster.ts waits 20 s for it).
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

/** Polls until `check` passes (bounded), answering how long that took. */
async function within(timeoutMs: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const from = Date.now();
  for (;;) {
    if (await check()) return Date.now() - from;
    if (Date.now() - from > timeoutMs) throw new Error(`${what}: not within ${String(timeoutMs)} ms`);
    await sleep(100);
  }
}

async function callRow(callId: string) {
  const [row] = await cluster.sql<{ state: string; end_reason: string | null; agent_id: string }>('SELECT state, end_reason, agent_id FROM calls WHERE id = $1', [callId]);
  return row;
}

/** The callSession's states for the call, oldest first, as the shared store has them. */
async function callStates(callId: string): Promise<string[]> {
  const rows = await cluster.sql<{ to_state: string }>("SELECT to_state FROM call_events WHERE call_id = $1 AND actor = 'callSession' ORDER BY id", [callId]);
  return rows.map((row) => row.to_state);
}

/** The media of one leg drops and comes back: the owner pauses the call for both people and resumes it. */
async function pauseAndResume(reporter: TestClient, other: TestClient, callId: string, reporterLeg: 'agent' | 'visitor'): Promise<void> {
  expect(await reporter.emit('call.media', { callId, state: 'reconnecting', attempt: 1 })).toEqual({ ok: true });
  const legs = reporterLeg === 'agent' ? { agent: RECONNECTING, visitor: UP } : { agent: UP, visitor: RECONNECTING };
  expect(await other.next('call.paused', (p) => p.legs[reporterLeg].media === 'reconnecting')).toEqual({ callId, legs });
  expect(await reporter.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await other.next('call.resumed')).toEqual({ callId });
  expect(await reporter.next('call.resumed')).toEqual({ callId });
}

/**
 * A relay sent while the nodes are still finding Redis again may be lost on the way, as a packet would be;
 * the client's ICE restart is sent again until it lands. This one is sent again, within a bound, until the
 * other leg has it.
 */
async function relayOnceBack(from: TestClient, to: TestClient, callId: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const ack = await from.emit('signal.iceRestart', { callId, sdp: SAMPLE_SDP }).catch(() => null);
    if (ack?.ok) {
      const arrived = await to.next('signal.iceRestart', undefined, 1_000).then(() => true, () => false);
      if (arrived) return attempt;
    }
    if (Date.now() > deadline) throw new Error(`no ICE restart was relayed within ${String(timeoutMs)} ms (${String(attempt)} tries; last answer ${JSON.stringify(ack)})`);
    await sleep(200);
  }
}

/** The lines of the node's log from `since` on that name `id`, as pino wrote them. */
function logLinesAbout(node: ClusterNode, id: string, since: number): { msg: string; time: number; line: string }[] {
  return cluster
    .logs(node)
    .split('\n')
    .filter((line) => line.includes(id))
    .flatMap((line) => {
      try {
        const entry = JSON.parse(line) as { time?: number; msg?: string };
        return (entry.time ?? 0) >= since ? [{ msg: entry.msg ?? '', time: entry.time ?? 0, line }] : [];
      } catch {
        return [];
      }
    });
}

/** When the process of `node` running now exits, and how. */
function exitOf(node: ClusterNode): Promise<{ at: number; code: number | null; signal: string | null }> {
  return new Promise((resolve) => node.child.once('exit', (code, signal) => resolve({ at: Date.now(), code, signal })));
}

describe('the fault harness', () => {
  it('runs every node’s Redis connections through its own link', () => {
    for (const node of cluster.nodes) {
      expect(cluster.redisLink(node).state).toBe('open');
      expect(cluster.redisLink(node).connections, `${node.name}'s connections through its link`).toBeGreaterThan(0);
    }
  });

  it('holds what a frozen link is given and delivers it on heal, and refuses every connection while cut', async () => {
    const link = await RedisLink.start(cluster.redis.port);
    const client = new Redis(link.url, { maxRetriesPerRequest: 0, commandTimeout: 500, retryStrategy: () => 100 });
    client.on('error', () => {});
    try {
      expect(await client.set('link-check', 'before')).toBe('OK');
      link.freeze();
      // Nothing reaches Redis while frozen, and no answer comes back; the connection stays open.
      await expect(client.set('link-check', 'during')).rejects.toThrow(/timed out/i);
      const direct = new Redis(cluster.redis.url);
      try {
        expect(await direct.get('link-check')).toBe('before');
        link.heal();
        // What was held goes on, late, as a healed path delivers it.
        await within(2_000, 'the held write delivered', async () => (await direct.get('link-check')) === 'during');
        expect(await client.get('link-check')).toBe('during');

        link.cut();
        await expect(client.get('link-check')).rejects.toThrow();
        await sleep(300);
        expect(client.status).not.toBe('ready');
        link.heal();
        await within(3_000, 'the client connected again', async () => client.status === 'ready');
        expect(await client.get('link-check')).toBe('during');
        await direct.del('link-check');
      } finally {
        direct.disconnect();
      }
    } finally {
      client.disconnect();
      await link.close();
    }
  });
});

describe('Redis restarted mid-call', () => {
  it('ends no call, puts every lease back, rings nobody twice afterwards, and a new call works', async () => {
    const ada = await people.agent(n2, 'ada');
    const { client: visitor } = await people.visitor(n1);
    const { requestId, callId } = await connectCall(ada, 'ada', visitor);
    const grace = await people.agent(n3, 'grace');

    // Without persistence it comes back empty: every lease, claim and stream is gone.
    await cluster.redis.restart();
    await cluster.waitForOwner(requestId, (owner) => owner?.node !== undefined, 15_000);
    // The nodes put back what Redis lost before anyone may take a fresh lease or claim: "afterwards" is from then.
    await cluster.redisSettled(15_000);
    await relayOnceBack(ada, visitor, callId, 10_000);
    expect(await relay(visitor, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await pauseAndResume(visitor, ada, callId, 'visitor');

    // Two visitors on two nodes ask at once; grace is the only one free (ada is in her call).
    const walt = (await people.visitor(n2, 'Walt Visitor')).client;
    const xena = (await people.visitor(n3, 'Xena Visitor')).client;
    const requests = await Promise.all([requestCall(walt), requestCall(xena)]);
    const ring = await grace.next('agent.ring');
    const rungIndex = requests.indexOf(ring.requestId);
    expect(rungIndex).toBeGreaterThanOrEqual(0);
    const [rung, waiting] = rungIndex === 0 ? [walt, xena] : [xena, walt];
    const waitingRequest = requests[1 - rungIndex]!;
    await waiting.next('routing.update', (u) => u.requestId === waitingRequest && u.state === 'queued');
    await settle();
    expect(people.rings(grace), 'the rings grace had').toEqual([ring.requestId]);
    expect(people.rings(ada), 'rings ada had in the middle of her call').toEqual([requestId]);

    // A new call, rung after the restart, works from ring to hang-up.
    await rung.next('routing.update', (u) => u.requestId === ring.requestId && u.state === 'ringing');
    const newCall = await accept(grace, rung, ring.requestId);
    expect(await relay(grace, rung, 'signal.offer', { callId: newCall, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await hangUp(rung, grace, newCall);
    await expectRung(grace, waiting, waitingRequest, 'grace');
    expect(await waiting.emit('visitor.cancel', { requestId: waitingRequest })).toEqual({ ok: true });
    expect(await grace.next('agent.ringCancelled')).toEqual({ requestId: waitingRequest });

    expect(received([ada, visitor], ['call.ended'])).toEqual([]);
    await hangUp(visitor, ada, callId);
    expect(await callRow(callId)).toEqual({ state: 'ended', end_reason: 'hangup', agent_id: 'ada' });
  });
});

describe('Postgres restarted mid-call', () => {
  it('has every node report not ready while it is down and ready after, keeps the call going, and loses no row', async () => {
    const ada = await people.agent(n2, 'ada');
    const { client: visitor } = await people.visitor(n3);
    const { callId } = await connectCall(ada, 'ada', visitor);

    await cluster.postgres.kill();
    for (const node of cluster.nodes) {
      await within(10_000, `${node.name}'s /readyz saying the store is down`, async () => {
        const { status, body } = await cluster.readiness(node);
        return status === 503 && (body as { reason?: string } | null)?.reason === 'store';
      });
    }

    // A relay needs no store: the call goes on.
    expect(await relay(ada, visitor, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitor, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    // Steps taken now are written once the store is back: a media loss and its recovery, and what the
    // client measured of it. Sent in order on one socket; answered whenever the server can.
    const attemptAt = Date.now();
    const answers = [
      emitWithin(visitor, 'call.media', { callId, state: 'reconnecting', attempt: 1 }, OUTAGE_ANSWER_MS),
      emitWithin(visitor, 'call.telemetry', { callId, attempt: 1, at: attemptAt, durationMs: 40, outcome: 'failed' }, OUTAGE_ANSWER_MS),
      emitWithin(visitor, 'call.telemetry', { callId, attempt: 2, at: attemptAt + 41, durationMs: 25, outcome: 'recovered' }, OUTAGE_ANSWER_MS),
      emitWithin(visitor, 'call.media', { callId, state: 'connected' }, OUTAGE_ANSWER_MS),
    ];
    await sleep(1_000);

    await cluster.postgres.restart();
    for (const node of cluster.nodes) {
      await within(20_000, `${node.name}'s /readyz saying ready again`, async () => (await cluster.readiness(node)).status === 200);
    }
    expect(await Promise.all(answers)).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: true }]);
    // Persist, then emit: the pause and the resume reach the agent once their steps are stored.
    expect(await ada.next('call.paused', undefined, 15_000)).toEqual({ callId, legs: { agent: UP, visitor: RECONNECTING } });
    expect(await ada.next('call.resumed', undefined, 15_000)).toEqual({ callId });
    expect(received([ada, visitor], ['call.ended'])).toEqual([]);
    expect(await relay(ada, visitor, 'signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });

    await hangUp(visitor, ada, callId);
    const detail = await people.callDetail(n1, 'ada', callId);
    expect(detail.call).toMatchObject({ state: 'ended', endReason: 'hangup' });
    expect(detail.telemetry.reconnectionAttempts).toEqual([
      { leg: 'visitor', at: attemptAt, durationMs: 40, outcome: 'failed' },
      { leg: 'visitor', at: attemptAt + 41, durationMs: 25, outcome: 'recovered' },
    ]);
    expect(detail.telemetry.disconnections).toEqual([{ leg: 'visitor', at: expect.any(Number), cause: 'media' }]);
    const states = await callStates(callId);
    const paused = states.indexOf('active.paused');
    expect(paused, `callSession states ${JSON.stringify(states)}`).toBeGreaterThanOrEqual(0);
    expect(states.slice(paused + 1)).toContain('active.live');
    expect(states.at(-1)).toBe('ended');
  });
});

describe('an owner partitioned from Redis', () => {
  it('stops acting on its request once its lease lapses: another node takes over, the call goes on, and its late hang-up changes nothing', async () => {
    const partitioned = n1;
    const adaOnC = await people.agent(n3, 'ada');
    // A second tab of hers, on the node about to be cut off: its messages reach only that node.
    const adaOnA = await people.agent(partitioned, 'ada');
    const { client: visitor, token } = await people.visitor(partitioned);
    const { requestId, callId } = await connectCall(adaOnC, 'ada', visitor);
    // The visitor moves to node 2, so the call's two people are both away from the node to be cut off.
    visitor.close();
    await adaOnC.next('call.paused', (p) => p.legs.visitor.socket === 'down');
    const visitorOnB = await people.resume(n2, token, visitor);
    await visitorOnB.next('session.resumed', (r) => r.call?.callId === callId);
    expect(await visitorOnB.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    await adaOnC.next('call.resumed');
    await visitorOnB.next('call.resumed');
    const before = await cluster.ownerOf(requestId);
    expect(before?.node).toBe(partitioned);

    const link = cluster.redisLink(partitioned);
    const cutAt = Date.now();
    link.freeze();
    const after = (await cluster.waitForOwner(requestId, (owner) => owner !== null && owner.nodeId !== partitioned.nodeId, 10_000)) as Owner;
    const takenAfterMs = Date.now() - cutAt;
    expect([n2, n3]).toContain(after.node);
    expect(after.token).toBeGreaterThan(before!.token);
    // Nobody takes it before it lapses in Redis: a TTL after the owner's last renew, itself at most a renew before the cut.
    expect(takenAfterMs).toBeGreaterThanOrEqual(LEASE_TTL_MS - LEASE_RENEW_MS - 100);
    expect(takenAfterMs).toBeLessThan(LEASE_TTL_MS + 3 * LEASE_RENEW_MS + 2_000);

    // The call goes on without the partitioned node, and the new owner acts on it.
    expect(await relay(adaOnC, visitorOnB, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitorOnB, adaOnC, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await pauseAndResume(visitorOnB, adaOnC, callId, 'visitor');
    expect(await cluster.fenceOf(requestId)).toBe(after.token);

    // The cut-off node no longer acts on the request: a hang-up given to it does not end the call. It may
    // refuse it, or close the socket so the client goes elsewhere; it must not apply it.
    const answer = await emitWithin(adaOnA, 'call.hangup', { callId }, 15_000).catch((error: unknown) => ({ timedOut: String(error) }));
    if (adaOnA.socket.connected) expect(answer).toMatchObject({ ok: false });
    await settle();
    expect(received([adaOnC, visitorOnB], ['call.ended'])).toEqual([]);
    expect(await callRow(callId)).toMatchObject({ state: 'active' });
    // It logged that it gave the request up (or that the store refused it as stale).
    const about = logLinesAbout(partitioned, requestId, cutAt);
    expect(about.filter((entry) => /lease|stale|fence|owner/i.test(entry.msg)), JSON.stringify(about.map((entry) => entry.msg))).not.toEqual([]);

    link.heal();
    await within(10_000, 'the healed node ready', async () => (await cluster.readiness(partitioned)).status === 200);
    await sleep(2 * LEASE_RENEW_MS);
    // Healed, it does not take the request back, and the fence still names the new owner.
    expect(await cluster.ownerOf(requestId)).toMatchObject({ nodeId: after.nodeId, token: after.token });
    expect(await cluster.fenceOf(requestId)).toBe(after.token);
    expect(await callRow(callId)).toMatchObject({ state: 'active' });
    await hangUp(visitorOnB, adaOnC, callId);
    expect(await callRow(callId)).toEqual({ state: 'ended', end_reason: 'hangup', agent_id: 'ada' });
  });
});

describe('the owner SIGKILLed mid-call', () => {
  it('lets another node take the call on: resumes land elsewhere, an ICE restart is relayed, hang-up and history work, and a ring times out at its deadline', async () => {
    const [owner, agentNode, other] = [n1, n2, n3];
    const ada = await people.agent(agentNode, 'ada');
    const vera = await people.visitor(owner);
    const { requestId, callId } = await connectCall(ada, 'ada', vera.client);
    expect((await cluster.ownerOf(requestId))?.node).toBe(owner);
    expect(await relay(ada, vera.client, 'signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    // The step both legs' media made marks the call connected; its commit may land just after their answers.
    let before!: CallDetail;
    await within(5_000, 'the call marked connected in the store', async () => {
      before = await people.callDetail(agentNode, 'ada', callId);
      return before.call.connectedAt !== null;
    });

    // A second request, ringing grace when the owner dies.
    const grace = await people.agent(other, 'grace');
    const walt = await people.visitor(owner, 'Walt Visitor');
    const ringing = await requestCall(walt.client);
    const ring = await expectRung(grace, walt.client, ringing, 'grace');
    expect((await cluster.ownerOf(ringing))?.node).toBe(owner);
    const ringEndedAt = grace.next('agent.ringCancelled', (r) => r.requestId === ringing, RING_TIMEOUT_MS + 10_000).then(() => Date.now());

    const killedAt = Date.now();
    await cluster.kill(owner, 'SIGKILL');
    await Promise.all([lost(vera.client), lost(walt.client)]);
    // As the widget does, each visitor comes back at once, on a node still up.
    const veraBack = await people.resume(other, vera.token, vera.client);
    const waltBack = await people.resume(agentNode, walt.token, walt.client);
    expect(await veraBack.next('session.resumed', undefined, 10_000)).toMatchObject({ call: { callId, role: 'answerer', peerName: 'Ada Lovelace' }, request: null });

    const newOwner = await cluster.waitForOwner(requestId, (o) => o?.node !== undefined && o.node !== owner, 10_000);
    await cluster.waitForOwner(ringing, (o) => o?.node !== undefined && o.node !== owner, 10_000);
    expect(Date.now() - killedAt, 'from the kill to both requests having a new owner').toBeLessThan(LEASE_TTL_MS + 3 * LEASE_RENEW_MS + 3_000);

    expect(await veraBack.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    // A relay fault after the takeover is still recovered by an ICE restart.
    expect(await relay(ada, veraBack, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(veraBack, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await within(5_000, 'the call active again', async () => (await callRow(callId))?.state === 'active');
    const attemptAt = Date.now();
    expect(await veraBack.emit('call.telemetry', { callId, attempt: 1, at: attemptAt, durationMs: 30, outcome: 'recovered' })).toEqual({ ok: true });
    // The new owner writes under its own ownership.
    await within(5_000, 'the store fenced with the new owner\'s token', async () => (await cluster.fenceOf(requestId)) === newOwner!.token);

    // The ring that was running when the owner died ends at its original deadline, on the new owner.
    const endedAt = await ringEndedAt;
    expect(Math.abs(endedAt - ring.expiresAt), `ring cancelled ${String(endedAt - ring.expiresAt)} ms from its deadline`).toBeLessThanOrEqual(DEADLINE_TOLERANCE_MS);
    await waltBack.next('routing.update', (u) => u.requestId === ringing && u.state === 'queued', 5_000);
    const causes = await cluster.sql<{ to_state: string; cause: string }>("SELECT to_state, cause FROM call_events WHERE request_id = $1 AND actor = 'routing' ORDER BY id", [ringing]);
    expect(causes.some((row) => row.to_state === 'searching' && /ringTimeout/.test(row.cause)), JSON.stringify(causes)).toBe(true);
    expect(await waltBack.emit('visitor.cancel', { requestId: ringing })).toEqual({ ok: true });
    expect(await waltBack.next('routing.ended', (e) => e.requestId === ringing)).toEqual({ requestId: ringing, reason: 'cancelled' });

    expect(received([ada, veraBack], ['call.ended'])).toEqual([]);
    expect(await ada.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    expect(await veraBack.next('call.ended')).toEqual({ callId, reason: 'hangup' });

    const after = await people.callDetail(other, 'ada', callId);
    expect(after.call).toMatchObject({ id: callId, requestId, agentId: 'ada', state: 'ended', endReason: 'hangup', connectedAt: before.call.connectedAt });
    for (const event of before.events) expect(after.events).toContainEqual(event);
    expect(after.events.length).toBeGreaterThan(before.events.length);
    expect(after.telemetry.reconnectionAttempts).toEqual([{ leg: 'visitor', at: attemptAt, durationMs: 30, outcome: 'recovered' }]);
  });
});

describe('a node drained with SIGTERM', () => {
  it('moves its requests to another node before it exits 0, and nobody notices: no pause, resume, end or second ring; relays work throughout, and a ring keeps its deadline', async () => {
    const drained = n2;
    const ada = await people.agent(n3, 'ada');
    const vera = await people.visitor(drained);
    const { requestId, callId } = await connectCall(ada, 'ada', vera.client);
    // The call's last step before the drain sends call.resumed: what a hand-off that sends it again repeats.
    await pauseAndResume(vera.client, ada, callId, 'visitor');
    const grace = await people.agent(n3, 'grace');
    const walt = await people.visitor(drained, 'Walt Visitor');
    const ringing = await requestCall(walt.client);
    const ring = await expectRung(grace, walt.client, ringing, 'grace');
    const owners = { call: await cluster.ownerOf(requestId), ring: await cluster.ownerOf(ringing) };
    expect(owners.call?.node).toBe(drained);
    expect(owners.ring?.node).toBe(drained);
    const before = await people.callDetail(n3, 'ada', callId);

    const mark = people.mark();
    const exit = exitOf(drained);
    const signalledAt = Date.now();
    drained.child.kill('SIGTERM');
    await within(DRAIN_MS, 'the drained node saying it is draining', async () => {
      const { status, body } = await cluster.readiness(drained);
      return status === 503 && (body as { reason?: string } | null)?.reason === 'draining';
    });
    // While it drains, it still relays for the people connected to it, both ways.
    expect(await relay(ada, vera.client, 'signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(vera.client, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });

    const exited = await exit;
    const redis = new Redis(cluster.redis.url);
    onTestFinished(() => redis.disconnect());
    expect(exited, 'how the drained node exited').toMatchObject({ code: 0, signal: null });
    expect(exited.at - signalledAt, 'from SIGTERM to exit').toBeLessThan(DRAIN_MS + HAND_OFF_MS + EXIT_SLACK_MS);
    // Both requests moved before the process exited: another node finished taking each over while it ran.
    for (const moved of [requestId, ringing]) {
      const owner = await cluster.ownerOf(moved);
      expect(owner?.node, `the owner of ${moved} after the drain`).toBeDefined();
      expect(owner!.node).not.toBe(drained);
      expect(owner!.token).toBeGreaterThan((moved === requestId ? owners.call : owners.ring)!.token);
      // The mark the new owner sets once its take-over is done, and the drained node waited for.
      expect(await redis.get(new RedisKeys().key('taken-over', moved)), `the take-over of ${moved} done`).toBe(`${owner!.nodeId}:${String(owner!.token)}`);
      const taken = logLinesAbout(owner!.node!, moved, signalledAt).filter((entry) => entry.msg === 'took a request over');
      expect(taken.length, `${owner!.node!.name} taking ${moved} over`).toBe(1);
      expect(taken[0]!.time, 'took over before the drained node exited').toBeLessThan(exited.at);
    }
    const handedOff = cluster
      .logs(drained)
      .split('\n')
      .filter((line) => line.includes('handed requests off'))
      .map((line) => JSON.parse(line) as { requests: number; untaken: number; time: number })
      .filter((entry) => entry.time >= signalledAt);
    expect(handedOff).toEqual([expect.objectContaining({ requests: 2, untaken: 0 })]);

    // Their sockets closed with it; as the widget does, each visitor comes back on a node still up.
    await Promise.all([lost(vera.client), lost(walt.client)]);
    const veraBack = await people.resume(n3, vera.token, vera.client);
    const waltBack = await people.resume(n3, walt.token, walt.client);
    expect(await veraBack.next('session.resumed')).toMatchObject({ call: { callId, state: 'active' }, request: null });
    expect(await waltBack.next('session.resumed')).toMatchObject({ call: null, request: { requestId: ringing, state: 'ringing' } });
    expect(await relay(ada, veraBack, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(veraBack, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await settle();
    const everyone = [ada, grace, vera.client, walt.client, veraBack, waltBack];
    expect(people.heardSince(everyone, mark, NOTICES), 'what anyone was told from SIGTERM on').toEqual([]);

    // The ring that was running on the drained node times out at its original deadline, on the new owner:
    // its step is dated when the timer fired there, apart from how long the news then takes to arrive.
    const cancelled = await grace.next('agent.ringCancelled', (r) => r.requestId === ringing, RING_TIMEOUT_MS + 5_000);
    const cancelledAt = Date.now();
    expect(cancelled).toEqual({ requestId: ringing });
    await waltBack.next('routing.update', (u) => u.requestId === ringing && u.state === 'queued', 5_000);
    const steps = await cluster.sql<{ cause: string; at: string }>("SELECT cause, at FROM call_events WHERE request_id = $1 AND actor = 'routing' ORDER BY id", [ringing]);
    const timedOut = steps.find((step) => /ringTimeout/.test(step.cause));
    expect(timedOut, JSON.stringify(steps)).toBeDefined();
    const late = Number(timedOut!.at) - ring.expiresAt;
    expect(Math.abs(late), `ring timed out ${String(late)} ms from its deadline (grace told ${String(cancelledAt - ring.expiresAt)} ms from it)`).toBeLessThanOrEqual(DEADLINE_TOLERANCE_MS);
    expect(cancelledAt, 'grace told of the timeout before its deadline').toBeGreaterThanOrEqual(ring.expiresAt - DEADLINE_TOLERANCE_MS);
    expect(people.rings(grace), 'the rings grace had').toEqual([ringing]);
    expect(people.heardSince([grace], mark, ['agent.ring']), 'rings sent to grace from SIGTERM on').toEqual([]);
    expect(await waltBack.emit('visitor.cancel', { requestId: ringing })).toEqual({ ok: true });
    expect(await waltBack.next('routing.ended', (e) => e.requestId === ringing)).toEqual({ requestId: ringing, reason: 'cancelled' });

    expect(people.heardSince([ada, vera.client, veraBack], mark, ['call.paused', 'call.resumed', 'call.ended'])).toEqual([]);
    await hangUp(veraBack, ada, callId);
    const after = await people.callDetail(n3, 'ada', callId);
    expect(after.call).toMatchObject({ id: callId, requestId, agentId: 'ada', state: 'ended', endReason: 'hangup', connectedAt: before.call.connectedAt });
    for (const event of before.events) expect(after.events).toContainEqual(event);
    // The one pause is the one before the drain; the drain lost no leg.
    // The take-over restored the call's telemetry without writing it again.
    expect(after.telemetry.disconnections, 'legs lost, as before the drain').toEqual(before.telemetry.disconnections);
    expect(after.telemetry.reconnectionAttempts, 'reconnection attempts, as before the drain').toEqual(before.telemetry.reconnectionAttempts);
    expect((await callStates(callId)).filter((state) => state === 'active.paused')).toHaveLength(1);
  });
});
