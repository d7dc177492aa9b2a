/**
 * The ICE servers each leg of a call is handed in `call.accepted`: the static ICE_SERVERS, and with
 * TURN_SECRET one TURN server whose credentials were minted for that call with the TURN REST scheme
 * (username `<expiry unix seconds>:<call id>`, password base64(HMAC-SHA1(secret, username))).
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { hangUp, requestCall } from '../support/routing.ts';
import { closeClientsThenServer, startTestServer, visitorAndAgents, type TestClient, type TestServer } from '../support/server.ts';

const SECRET = 'a-turn-secret-that-is-long-enough-0123456789';
const STUN = { urls: 'stun:stun.example:3478' };
const TURN_URLS = ['turn:turn.example:3478?transport=udp', 'turns:turn.example:5349'];
const TTL_S = 600;

let t: TestServer | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  await closeClientsThenServer(clients, t);
  t = null;
});

/** One call from request to accept; both legs' `call.accepted`. */
async function oneCall(env: Record<string, string>) {
  t ??= await startTestServer(env);
  const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
  clients.push(agents.ada, visitor);
  const requestId = await requestCall(visitor);
  await agents.ada.next('agent.ring', (ring) => ring.requestId === requestId);
  expect(await agents.ada.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const [agentSide, visitorSide] = await Promise.all([agents.ada.next('call.accepted'), visitor.next('call.accepted')]);
  return { agentSide, visitorSide, ada: agents.ada, visitor };
}

describe('ICE servers in call.accepted', () => {
  it('with TURN_SECRET, adds credentials minted for the call, valid for the TTL, to the static servers', async () => {
    const env = { ICE_SERVERS: JSON.stringify([STUN]), TURN_SECRET: SECRET, TURN_URLS: TURN_URLS.join(','), TURN_CREDENTIAL_TTL_SECONDS: String(TTL_S) };
    const before = Math.floor(Date.now() / 1_000);
    const { agentSide, visitorSide, ada, visitor } = await oneCall(env);
    const after = Math.ceil(Date.now() / 1_000);
    expect(visitorSide.iceServers).toEqual(agentSide.iceServers);
    const [stun, turn, ...rest] = agentSide.iceServers;
    expect(stun).toEqual(STUN);
    expect(rest).toEqual([]);
    expect(turn!.urls).toEqual(TURN_URLS);
    const [expiry, id] = turn!.username!.split(':');
    expect(id).toBe(agentSide.callId);
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + TTL_S);
    expect(Number(expiry)).toBeLessThanOrEqual(after + TTL_S);
    expect(turn!.credential).toBe(createHmac('sha1', SECRET).update(turn!.username!).digest('base64'));
    expect(agentSide.iceTransportPolicy).toBe('all');

    // The next call gets credentials of its own.
    await hangUp(visitor, ada, agentSide.callId);
    for (const client of clients.splice(0)) client.close();
    const next = await oneCall(env);
    expect(next.agentSide.iceServers[1]!.username).toMatch(new RegExp(`^\\d+:${next.agentSide.callId}$`));
    expect(next.agentSide.iceServers[1]!.username).not.toBe(turn!.username);
  });

  it('without TURN_SECRET, hands out exactly the static ICE_SERVERS', async () => {
    const statics = [STUN, { urls: TURN_URLS[0]!, username: 'fixed', credential: 'fixed-password' }];
    const { agentSide, visitorSide } = await oneCall({ ICE_SERVERS: JSON.stringify(statics), ICE_TRANSPORT_POLICY: 'relay' });
    expect(agentSide.iceServers).toEqual(statics);
    expect(visitorSide.iceServers).toEqual(statics);
    expect(agentSide.iceTransportPolicy).toBe('relay');
  });
});
