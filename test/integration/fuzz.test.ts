/**
 * Fuzz and abuse: thousands of generated events from visitors and agents with real tokens, against the real
 * server in its own process (real SQLite file), while a clean call between another visitor and agent runs
 * beside them. The server must answer every event with a documented code and never `internal`, stay up,
 * keep every fuzzed message out of the clean call, and not grow without bound. The fuzzing agents accept
 * every ring, so fuzzers also end up in calls with each other and fuzzed signals reach live calls.
 *
 * Seeded: the seed is printed, and `FUZZ_SEED=<n>` replays the same sequence of choices.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_NAME_CODE_UNITS, MAX_NAME_LENGTH, type CallDetail } from '@callchart/machines';
import { FuzzTally, Fuzzer, foreignMessages, recordAll, residentBytes } from '../support/fuzzClients.ts';
import { IdPool, Rng, fuzzEvent, fuzzSeed } from '../support/fuzzPayloads.ts';
import {
  DEMO,
  SAMPLE_CANDIDATE,
  SAMPLE_SDP,
  TestClient,
  agentToken,
  freePort,
  getJson,
  sleep,
  spawnServer,
  tempDatabase,
  visitorToken,
  type SpawnedServer,
} from '../support/server.ts';

/** Fuzzed events in all, over every fuzzing socket. */
const EVENTS = 12_000;
/** Acked events each fuzzing socket keeps unanswered at once: its pace. */
const WINDOW = 8;
const RSS_GROWTH_LIMIT_BYTES = 150 * 1024 * 1024;
/** The clean call's pool: no fuzzer asks for it, so nothing a fuzzer does may ring its agent. */
const CLEAN_POOL = 'quiet-room';

/**
 * The limits, set rather than left to their defaults, so the suite means the same once they are enforced:
 * the fuzzers must reach validation and the switchboard, not stop at the token bucket, so each socket may
 * send far above the default pace; and the clean visitor calls again and again, so its requests are not
 * capped. Every other limit is set to its default, as a reminder that the fuzzers stay within it.
 */
const FUZZ_LIMITS: Record<string, string> = {
  LIMIT_SOCKET_EVENTS_PER_SECOND: '5000',
  LIMIT_SOCKET_EVENT_BURST: '5000',
  LIMIT_SOCKET_STRIKES_PER_MINUTE: '1000000',
  LIMIT_VISITOR_REQUESTS: '10000',
  LIMIT_VISITOR_SESSIONS: '100',
  LIMIT_SOCKETS_PER_VISITOR: '3',
  LIMIT_SOCKETS_PER_AGENT_SESSION: '5',
};

const CLEAN_AGENT = { id: 'quinn', name: 'Quinn Quiet', email: 'quinn@example.com', password: 'demo-quinn', pools: [CLEAN_POOL], roles: ['agent'] };

let server: SpawnedServer;
/** Every socket a test opened, closed after the file whether its test passed or not. */
const opened: { close(): void }[] = [];
let scratch: string;
let database: { path: string; remove: () => void };

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'callchart-fuzz-'));
  const agentsFile = path.join(scratch, 'agents.json');
  const demo = Object.values(DEMO).map((agent) => ({
    ...agent,
    pools: agent.id === 'inspector' ? [] : ['support', 'sales'],
    roles: [agent.id === 'inspector' ? 'inspector' : 'agent'],
  }));
  writeFileSync(agentsFile, JSON.stringify([...demo, CLEAN_AGENT]));
  database = tempDatabase();
  server = await spawnServer({
    PORT: String(await freePort()),
    DATABASE_PATH: database.path,
    AGENTS_FILE: agentsFile,
    // Client reports on: the sanitizer walks what fuzzers send, too.
    INSPECT_CLIENTS: 'on',
    // The clean agent answers at once, but a loaded event loop must not time its ring out.
    RING_TIMEOUT_MS: '15000',
    ...FUZZ_LIMITS,
  });
}, 30_000);

afterAll(async () => {
  for (const socket of opened.splice(0)) socket.close();
  await server?.kill();
  database?.remove();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface CleanCall {
  agent: TestClient;
  visitor: TestClient;
  agentSeen: { event: string; payload: unknown }[];
  visitorSeen: { event: string; payload: unknown }[];
  own: { requests: Set<string>; calls: Set<string> };
}

const WAIT_MS = 15_000;

/** One whole call on the clean pair, every relay checked to arrive unchanged. Its ids go to the fuzzers too. */
async function cleanRound(clean: CleanCall, ids: IdPool): Promise<string> {
  const { agent, visitor, own } = clean;
  const requested = await visitor.emit('visitor.request', { pool: CLEAN_POOL });
  if (!requested.ok) throw new Error(`the clean request was refused: ${JSON.stringify(requested.error)}`);
  const { requestId } = requested;
  own.requests.add(requestId);
  ids.add('requests', requestId);
  await agent.next('agent.ring', (ring) => ring.requestId === requestId, WAIT_MS);
  expect(await agent.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const { callId, role } = await agent.next('call.accepted', () => true, WAIT_MS);
  own.calls.add(callId);
  ids.add('calls', callId);
  expect(role).toBe('offerer');
  await visitor.next('call.accepted', (accepted) => accepted.callId === callId, WAIT_MS);

  const offer = `${SAMPLE_SDP}a=clean-offer:${callId}\r\n`;
  expect(await agent.emit('signal.offer', { callId, sdp: offer })).toEqual({ ok: true });
  expect(await visitor.next('signal.offer', (o) => o.callId === callId, WAIT_MS)).toEqual({ callId, sdp: offer });
  const answer = `${SAMPLE_SDP}a=clean-answer:${callId}\r\n`;
  expect(await visitor.emit('signal.answer', { callId, sdp: answer })).toEqual({ ok: true });
  expect(await agent.next('signal.answer', (a) => a.callId === callId, WAIT_MS)).toEqual({ callId, sdp: answer });
  for (let i = 0; i < 3; i++) {
    const fromAgent = { ...SAMPLE_CANDIDATE, candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${5_000 + i} typ host` };
    expect(await agent.emit('signal.candidate', { callId, candidate: fromAgent })).toEqual({ ok: true });
    expect(await visitor.next('signal.candidate', (c) => c.callId === callId, WAIT_MS)).toEqual({ callId, candidate: fromAgent });
    const fromVisitor = { ...SAMPLE_CANDIDATE, candidate: `candidate:${i} 1 udp 2122260223 127.0.0.2 ${6_000 + i} typ host`, sdpMid: '1' };
    expect(await visitor.emit('signal.candidate', { callId, candidate: fromVisitor })).toEqual({ ok: true });
    expect(await agent.next('signal.candidate', (c) => c.callId === callId, WAIT_MS)).toEqual({ callId, candidate: fromVisitor });
  }
  expect(await agent.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await visitor.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
  expect(await agent.next('call.ended', (e) => e.callId === callId, WAIT_MS)).toEqual({ callId, reason: 'hangup' });
  expect(await visitor.next('call.ended', (e) => e.callId === callId, WAIT_MS)).toEqual({ callId, reason: 'hangup' });
  return callId;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return response.status === 200 && ((await response.json()) as { ok?: unknown }).ok === true;
  } catch {
    return false;
  }
}

/** Log lines at error level or above: an `internal` reply is always logged so, whatever socket it went to. */
function errorLines(output: string): string[] {
  return output.split('\n').filter((line) => {
    if (!line.startsWith('{')) return false;
    try {
      return ((JSON.parse(line) as { level?: unknown }).level as number) >= 50;
    } catch {
      return false;
    }
  });
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

describe('fuzz and abuse', () => {
  it(`answers ${EVENTS} fuzzed events with documented codes only, while a clean call beside them hears nothing foreign`, async () => {
    const seed = fuzzSeed();
    console.info(`fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const rng = new Rng(seed);
    const ids = new IdPool();
    const tally = new FuzzTally();
    const { url } = server;

    const cleanAgentToken = await loginClean(url);
    const cleanVisitor = await visitorToken(url, 'Clean Visitor');
    const clean: CleanCall = {
      agent: await TestClient.connect(url, cleanAgentToken),
      visitor: await TestClient.connect(url, cleanVisitor.token),
      agentSeen: [],
      visitorSeen: [],
      own: { requests: new Set(), calls: new Set() },
    };
    opened.push(clean.agent, clean.visitor);
    clean.agentSeen = recordAll(clean.agent.socket);
    clean.visitorSeen = recordAll(clean.visitor.socket);

    // Visitors, one of them on two sockets, and every demo agent: each socket with its own sequence.
    const visitorTokens = await Promise.all([1, 2, 3, 4].map(async (n) => (await visitorToken(url, `Fuzz ${n}`)).token));
    const agentTokens = await Promise.all((['ada', 'grace', 'alan'] as const).map((agent) => agentToken(url, agent)));
    const fuzzers = [
      ...[...visitorTokens, visitorTokens[0]!].map((token) => new Fuzzer({ url, token, rng: rng.fork(), ids, tally, window: WINDOW })),
      ...agentTokens.map((token) => new Fuzzer({ url, token, rng: rng.fork(), ids, tally, window: WINDOW, acceptsRings: true })),
    ];
    opened.push(...fuzzers);
    await Promise.all(fuzzers.map((fuzzer) => fuzzer.ready()));

    const rssBefore = residentBytes(server.child.pid!);
    const started = Date.now();
    let fuzzing = true;
    const cleanCalls: string[] = [];
    // Its failure is kept for after the fuzzing, so it is reported as the test's and not as a stray rejection.
    let cleanFailure: unknown = null;
    const cleanRun = (async () => {
      while (fuzzing) cleanCalls.push(await cleanRound(clean, ids));
    })().catch((error: unknown) => {
      cleanFailure = error;
    });
    const unhealthy: number[] = [];
    const watch = (async () => {
      while (fuzzing) {
        if (!(await healthy(url))) unhealthy.push(Date.now() - started);
        await sleep(500);
      }
    })();

    try {
      await Promise.all(fuzzers.map((fuzzer) => fuzzer.run(Math.ceil(EVENTS / fuzzers.length))));
    } finally {
      fuzzing = false;
    }
    await Promise.all([cleanRun, watch]);
    if (cleanFailure !== null) throw cleanFailure;
    const fuzzMs = Date.now() - started;
    // After the storm: still up, and a call still goes through.
    expect(await healthy(url)).toBe(true);
    cleanCalls.push(await cleanRound(clean, ids));
    await sleep(300);
    const rssAfter = residentBytes(server.child.pid!);

    console.info(`fuzz in ${fuzzMs} ms, ${cleanCalls.length} clean calls beside it; server RSS ${mb(rssBefore)} MB -> ${mb(rssAfter)} MB\n  ${tally.summary()}`);

    expect(tally.sent).toBeGreaterThanOrEqual(10_000);
    expect(tally.undocumented).toEqual([]);
    expect(tally.codes.get('internal') ?? 0).toBe(0);
    expect(tally.malformed).toEqual([]);
    expect(tally.unanswered).toBe(0);
    // A message over 256 KiB (maxHttpBufferSize) closes its socket, as documented; nothing else may.
    expect(tally.disconnects.filter((reason) => reason !== 'transport close')).toEqual([]);
    expect(errorLines(server.output())).toEqual([]);
    // The fuzz reached past validation: refusals of every kind, and events that were taken.
    for (const code of ['invalid-payload', 'unknown-event', 'forbidden', 'not-found']) expect(tally.codes.get(code) ?? 0).toBeGreaterThan(0);
    expect(tally.ok).toBeGreaterThan(0);

    expect(unhealthy).toEqual([]);
    expect(cleanCalls.length).toBeGreaterThanOrEqual(2);
    expect(foreignMessages(clean.agentSeen, clean.own)).toEqual([]);
    expect(foreignMessages(clean.visitorSeen, clean.own)).toEqual([]);
    // Every clean call is in the store as it happened, fuzzers or not.
    for (const callId of cleanCalls) {
      const { status, body } = await getJson<CallDetail>(`${url}/api/calls/${callId}`, cleanAgentToken);
      expect(status).toBe(200);
      expect(body.call).toMatchObject({ id: callId, agentId: CLEAN_AGENT.id, state: 'ended', endReason: 'hangup' });
    }
    expect(rssAfter - rssBefore).toBeLessThan(RSS_GROWTH_LIMIT_BYTES);

    // ---------------------------------------------------------------------------------------------
    // Per-limit assertions go here: each limit of the server (socket event bucket, sockets per token,
    // requests per visitor, visitor sessions and logins per address) answering as documented.
    // ---------------------------------------------------------------------------------------------
  }, 90_000);

  it('makes the same moves for the same seed, whatever ids the server handed out', () => {
    const moves = (ids: IdPool) => {
      const rng = new Rng(20_261_207);
      return Array.from({ length: 2_000 }, () => {
        const { name, kind, ack, args } = fuzzEvent(rng, ids);
        return `${kind} ${name} ${ack} ${args.length}`;
      });
    };
    const busy = new IdPool();
    for (let i = 0; i < 50; i++) {
      busy.add('requests', `req_${i}`);
      busy.add('calls', `call_${i}`);
      busy.add('resumeTokens', `token.${i}`);
    }
    const first = moves(new IdPool());
    expect(moves(busy)).toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(100);
  });

  it('takes the longest display name a visitor may have, in its token and on the socket', async () => {
    // One grapheme of stacked three-byte marks: the most UTF-8 a name may carry, inside a signed token.
    const longest = `a${'\u20d0'.repeat(MAX_NAME_CODE_UNITS - 1)}`;
    const wide = '\u{1F469}\u200D\u{1F4BB}'.repeat(MAX_NAME_LENGTH);
    for (const name of [longest, wide]) {
      const session = await visitorToken(server.url, name);
      const visitor = await TestClient.connect(server.url, session.token);
      opened.push(visitor);
      const requested = await visitor.emit('visitor.request', { pool: 'support', name });
      expect(requested).toEqual({ ok: true, requestId: expect.any(String) });
      if (requested.ok) expect(await visitor.emit('visitor.cancel', { requestId: requested.requestId })).toEqual({ ok: true });
      visitor.close();
    }
  });
});

async function loginClean(url: string): Promise<string> {
  const response = await fetch(`${url}/api/agents/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: CLEAN_AGENT.email, password: CLEAN_AGENT.password }),
  });
  if (response.status !== 200) throw new Error(`the clean agent could not log in: ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}
