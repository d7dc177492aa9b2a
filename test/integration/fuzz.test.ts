/**
 * Fuzz and abuse: thousands of generated events from visitors and agents with real tokens, against the real
 * server in its own process (real SQLite file), while a clean call between another visitor and agent runs
 * beside them. The server must answer every event with a documented code and never `internal`, stay up,
 * keep every fuzzed message out of the clean call, and not grow without bound. The fuzzing agents accept
 * every ring, so fuzzers also end up in calls with each other and fuzzed signals reach live calls.
 *
 * The abuse half runs a second server at the documented default limits and drives each limit past its
 * edge: a flooding socket, sockets over the per-token counts, a request → cancel loop, unknown pools,
 * visitor sessions and wrong passwords per address and account, and the rejected-event log's cap.
 *
 * Seeded: the seed is printed, and `FUZZ_SEED=<n>` replays the same sequence of choices.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_NAME_CODE_UNITS, MAX_NAME_LENGTH, type CallDetail } from '@callchart/machines';
import { FuzzTally, Fuzzer, foreignMessages, recordAll, residentBytes } from '../support/fuzzClients.ts';
import { defaultLimitEnv, flood, logLines, replyCode, untilLogged, type FloodShot, type LogLine } from '../support/fuzzLimits.ts';
import { IdPool, Rng, fuzzEvent, fuzzSeed } from '../support/fuzzPayloads.ts';
import {
  DEMO,
  SAMPLE_CANDIDATE,
  SAMPLE_SDP,
  TestClient,
  agentToken,
  connectFailure,
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
function errorLines(output: string): LogLine[] {
  return logLines(output).filter((line) => (line.level ?? 0) >= 50);
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

describe('fuzz and abuse', () => {
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

/** The abuse half's server: its own, at the documented default limits. */
const DEFAULTS = defaultLimitEnv();
/** A pool one agent serves who never comes online: a request for it waits in the queue and rings nobody. */
const UNSERVED_POOL = 'sales';
const ABUSE_AGENTS = [
  { ...DEMO.ada, pools: ['support'], roles: ['agent'] },
  { ...DEMO.grace, pools: [UNSERVED_POOL], roles: ['agent'] },
  { ...DEMO.alan, pools: ['back-office'], roles: ['agent'] },
  { ...DEMO.inspector, pools: [], roles: ['inspector'] },
];
const WRONG_PASSWORD = 'not-the-password-5c1e';

describe('abuse at the documented default limits', () => {
  const { limits } = DEFAULTS;
  const seed = fuzzSeed();
  const rng = new Rng(seed);
  /** Every reply the server gave in this half: none may be `internal` or an undocumented code. */
  const tally = new FuzzTally();
  const sockets: TestClient[] = [];
  /** Visitor sessions this half has had: every one of them counts against loopback's per-address limit. */
  let sessionsIssued = 0;
  let abuse: SpawnedServer;
  let abuseDatabase: { path: string; remove: () => void };
  let abuseScratch: string;

  beforeAll(async () => {
    console.info(`abuse seed ${seed} (replay with FUZZ_SEED=${seed})`);
    abuseScratch = mkdtempSync(path.join(tmpdir(), 'callchart-abuse-'));
    const agentsFile = path.join(abuseScratch, 'agents.json');
    writeFileSync(agentsFile, JSON.stringify(ABUSE_AGENTS));
    abuseDatabase = tempDatabase();
    abuse = await spawnServer({ PORT: String(await freePort()), DATABASE_PATH: abuseDatabase.path, AGENTS_FILE: agentsFile, ...DEFAULTS.env });
  }, 30_000);

  afterEach(async () => {
    expect(abuse.child.exitCode).toBeNull();
    expect(await healthy(abuse.url)).toBe(true);
    expect(tally.undocumented).toEqual([]);
    expect(tally.codes.get('internal') ?? 0).toBe(0);
    expect(tally.malformed).toEqual([]);
    expect(errorLines(abuse.output())).toEqual([]);
  });

  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await abuse?.kill();
    abuseDatabase?.remove();
    if (abuseScratch) rmSync(abuseScratch, { recursive: true, force: true });
  });

  async function newVisitor(name: string): Promise<{ token: string; visitorId: string }> {
    const session = await visitorToken(abuse.url, name);
    sessionsIssued += 1;
    return session;
  }

  async function connect(token: string): Promise<TestClient> {
    const client = await TestClient.connect(abuse.url, token);
    sockets.push(client);
    return client;
  }

  /** One event and its reply, which goes to the tally. */
  async function ask(client: TestClient, event: string, payload: unknown): Promise<{ ok: boolean; requestId?: string; error?: { code: string; message: string } }> {
    const reply = await client.emitRaw(event, payload);
    tally.reply(event, reply);
    return reply as { ok: boolean; requestId?: string; error?: { code: string; message: string } };
  }

  const lines = () => logLines(abuse.output());
  const bySocket = (msg: string, socketId: string) => (line: LogLine) => line.msg === msg && line.socket === socketId;

  it('answers a flooding socket rate-limited with nothing else happening, and disconnects it when the flood goes on', async () => {
    const { eventBurst, eventsPerSecond, strikesPerMinute, rejectionLogsPerMinute } = limits.sockets;
    const bucketMessage = new RegExp(`^Too many events: at most ${String(eventsPerSecond)} per second\\. Try again in \\d+ ms\\.$`);
    const refusedByBucket = (shot: FloodShot) =>
      replyCode(shot.reply) === 'rate-limited' && bucketMessage.test((shot.reply as { error: { message: string } }).error.message);
    const visitor = await newVisitor('Flood');
    const client = await connect(visitor.token);
    const socketId = client.socket.id!;
    const disconnected = new Promise<string>((resolve) => client.socket.once('disconnect', resolve));
    const ping = { name: 'session.ping', payload: {} };
    const started = Date.now();

    // The burst in pings, which do nothing; then, while the bucket is empty, call requests among the pings.
    // A request the bucket refused must leave no trace: no request, and nothing counted against the visitor.
    const tail = Array.from({ length: Math.floor(strikesPerMinute / 2) }, () =>
      rng.chance(0.25) ? { name: 'visitor.request', payload: { pool: UNSERVED_POOL } } : ping,
    );
    const first = await flood(client.socket, [...Array.from({ length: eventBurst }, () => ping), ...tail]);
    for (const shot of first) tally.reply(shot.name, shot.reply);
    expect(first.slice(0, eventBurst).map((shot) => replyCode(shot.reply))).toEqual(Array.from({ length: eventBurst }, () => 'ok'));
    const firstRefused = first.filter(refusedByBucket).length;
    // The bucket refills at its rate while the flood goes on, and lets one event through per refilled token.
    const firstMs = Date.now() - started;
    expect(firstRefused).toBeGreaterThan(0);
    expect(tail.length - firstRefused).toBeLessThanOrEqual(Math.ceil((firstMs * eventsPerSecond) / 1_000) + 1);
    const requestsLetThrough = first.filter((shot) => shot.name === 'visitor.request' && !refusedByBucket(shot));
    const requestsRefused = first.filter((shot) => shot.name === 'visitor.request' && refusedByBucket(shot));
    expect(requestsRefused.length).toBeGreaterThan(0);
    expect(first.filter((shot) => shot.reply === null)).toEqual([]);
    const granted = new Set(requestsLetThrough.flatMap((shot) => ((shot.reply as { requestId?: string }).requestId ?? [])));

    // Sustained: pings until the server has refused the socket strikesPerMinute times within the minute.
    const second = await flood(client.socket, Array.from({ length: strikesPerMinute }, () => ping));
    for (const shot of second) if (shot.reply !== null) tally.reply(shot.name, shot.reply);
    expect(await disconnected).toBe('io server disconnect');
    const strikes = firstRefused + second.filter(refusedByBucket).length;
    const lost = second.filter((shot) => shot.reply === null).length;
    expect(lost).toBeGreaterThan(0);
    // The last strike disconnects the socket, so its own reply may not reach it.
    expect(strikes).toBeGreaterThanOrEqual(strikesPerMinute - 1);
    expect(strikes).toBeLessThanOrEqual(strikesPerMinute);
    const floodMs = Date.now() - started;
    expect(floodMs).toBeLessThan(60_000);

    // Nothing the bucket refused happened: the only requests the server ever spoke of are those it let through,
    const spokenOf = client.events.flatMap(({ payload }) => {
      const requestId = (payload as { requestId?: unknown } | null)?.requestId;
      return typeof requestId === 'string' ? [requestId] : [];
    });
    expect(spokenOf.filter((requestId) => !granted.has(requestId))).toEqual([]);
    // and the visitor has the rest of its requests on another socket.
    const again = await connect(visitor.token);
    for (const requestId of granted) expect(['ok', 'not-found']).toContain(replyCode(await ask(again, 'visitor.cancel', { requestId })));
    const { points } = limits.visitorRequests;
    let taken = 0;
    for (let i = 0; i <= points; i++) {
      const reply = await ask(again, 'visitor.request', { pool: UNSERVED_POOL });
      if (!reply.ok) {
        expect(reply.error).toEqual({ code: 'rate-limited', message: expect.stringMatching(/^Too many call requests: try again in \d+ s\.$/) });
        break;
      }
      taken += 1;
      expect(await ask(again, 'visitor.cancel', { requestId: reply.requestId })).toEqual({ ok: true });
    }
    expect(taken).toBe(Math.max(0, points - requestsLetThrough.length));

    const logged = await untilLogged(abuse.output, (all) => all.some(bySocket('rejected client events not logged', socketId)));
    expect(logged.filter(bySocket('socket disconnected: too many events', socketId))).toEqual([
      expect.objectContaining({ strikes: strikesPerMinute, eventsPerSecond }),
    ]);
    const refusedInAll = first.concat(second).filter((shot) => shot.reply !== null && replyCode(shot.reply) !== 'ok').length;
    const [summary, ...more] = logged.filter(bySocket('rejected client events not logged', socketId));
    expect(more).toEqual([]);
    // Every refusal was written or withheld; the last strike, whose reply went with the socket, counts too.
    expect(summary!.withheld).toBeGreaterThanOrEqual(refusedInAll - rejectionLogsPerMinute);
    expect(summary!.withheld).toBeLessThanOrEqual(refusedInAll - rejectionLogsPerMinute + 1);
    console.info(
      `flood: ${String(first.length + second.length)} events in ${String(floodMs)} ms; ${String(strikes)} refused by the bucket, ` +
        `${String(requestsLetThrough.length)} of ${String(requestsLetThrough.length + requestsRefused.length)} requests let through; ${String(lost)} unanswered after the disconnect`,
    );
    // The cap holds to the socket's end: the strike that disconnects it is withheld like the others, not
    // written after the summary that closed its account.
    await sleep(200);
    expect(lines().filter(bySocket('rejected client event', socketId))).toHaveLength(rejectionLogsPerMinute);
  });

  it('refuses at the handshake the sockets over the limit per visitor token and per agent session', async () => {
    const { perVisitor, perAgentSession } = limits.sockets;
    const visitor = await newVisitor('Many Tabs');
    const agent = await agentToken(abuse.url, 'alan');
    const refusedBefore = lines().filter((line) => line.msg === 'socket refused').length;
    const over = 3;
    const visitorSockets: TestClient[] = [];
    for (let i = 0; i < perVisitor; i++) visitorSockets.push(await connect(visitor.token));
    for (let i = 0; i < over; i++) expect(await connectFailure(abuse.url, { token: visitor.token })).toBe('too-many-sockets');
    for (let i = 0; i < perAgentSession; i++) await connect(agent);
    for (let i = 0; i < over; i++) expect(await connectFailure(abuse.url, { token: agent })).toBe('too-many-sockets');

    const logged = await untilLogged(abuse.output, (all) => all.filter((line) => line.msg === 'socket refused').length >= refusedBefore + 2 * over);
    const refused = logged.filter((line) => line.msg === 'socket refused').slice(refusedBefore);
    expect(refused).toEqual([
      ...Array.from({ length: over }, () => expect.objectContaining({ code: 'too-many-sockets', reason: 'too-many-sockets', kind: 'visitor', max: perVisitor, address: expect.stringMatching(/127\.0\.0\.1$/) })),
      ...Array.from({ length: over }, () => expect.objectContaining({ code: 'too-many-sockets', reason: 'too-many-sockets', kind: 'agent', max: perAgentSession, address: expect.stringMatching(/127\.0\.0\.1$/) })),
    ]);
    for (const line of refused) {
      expect(JSON.stringify(line)).not.toContain(visitor.token);
      expect(JSON.stringify(line)).not.toContain(agent);
    }

    // The count is given back when a socket closes.
    const visitorGone = (all: LogLine[]) => all.filter((line) => line.msg === 'socket disconnected' && String(line.who).includes(visitor.visitorId)).length;
    const goneBefore = visitorGone(lines());
    visitorSockets[0]!.close();
    await untilLogged(abuse.output, (all) => visitorGone(all) > goneBefore);
    await connect(visitor.token);
    expect(await connectFailure(abuse.url, { token: visitor.token })).toBe('too-many-sockets');
    for (const socket of sockets.splice(0)) socket.close();
  });

  it("refuses a visitor's request → cancel loop past the per-visitor limit, and rings the one agent at most once within the re-ring window", async () => {
    const { points, windowS } = limits.visitorRequests;
    const ada = await connect(await agentToken(abuse.url, 'ada'));
    const adaSeen = recordAll(ada.socket);
    const visitor = await connect((await newVisitor('Looping')).token);
    const loops = points * 3;

    const firstRequest = await ask(visitor, 'visitor.request', { pool: 'support' });
    expect(firstRequest).toEqual({ ok: true, requestId: expect.any(String) });
    await ada.next('agent.ring', (ring) => ring.requestId === firstRequest.requestId, WAIT_MS);
    const rungAt = Date.now();
    const answers = [firstRequest];
    expect(await ask(visitor, 'visitor.cancel', { requestId: firstRequest.requestId })).toEqual({ ok: true });
    while (answers.length < loops) {
      const reply = await ask(visitor, 'visitor.request', { pool: 'support' });
      answers.push(reply);
      if (reply.ok) expect(await ask(visitor, 'visitor.cancel', { requestId: reply.requestId })).toEqual({ ok: true });
    }
    const loopMs = Date.now() - rungAt;
    expect(loopMs).toBeLessThan(limits.reringWindowMs);
    expect(answers.slice(0, points)).toEqual(Array.from({ length: points }, () => ({ ok: true, requestId: expect.any(String) })));
    const refusals = answers.slice(points);
    expect(refusals).toEqual(
      Array.from({ length: loops - points }, () => ({ ok: false, error: { code: 'rate-limited', message: expect.stringMatching(/^Too many call requests: try again in \d+ s\.$/) } })),
    );
    for (const refusal of refusals) expect(Number(/in (\d+) s/.exec(refusal.error!.message)![1])).toBeLessThanOrEqual(windowS);

    // Long enough for any ring the loop caused to have come, and still inside the window.
    await sleep(Math.min(1_500, limits.reringWindowMs - loopMs - 500));
    expect(Date.now() - rungAt).toBeLessThan(limits.reringWindowMs);
    expect(adaSeen.filter((seen) => seen.event === 'agent.ring').map((seen) => (seen.payload as { requestId: string }).requestId)).toEqual([firstRequest.requestId]);
    for (const socket of sockets.splice(0)) socket.close();
  });

  it('answers a request for a pool nobody serves not-found at once, and holds nothing', async () => {
    const visitor = await connect((await newVisitor('Lost')).token);
    const unknown = Array.from({ length: 3 }, () => `no-such-pool-${String(rng.int(0, 1_000_000))}`);
    for (const pool of unknown) {
      const sentAt = Date.now();
      expect(await ask(visitor, 'visitor.request', { pool })).toEqual({ ok: false, error: { code: 'not-found', message: 'Nobody takes calls for this pool.' } });
      expect(Date.now() - sentAt).toBeLessThan(1_000);
    }
    // Had one been queued, this would be `conflict`: a visitor has one request at a time.
    const real = await ask(visitor, 'visitor.request', { pool: UNSERVED_POOL });
    expect(real).toEqual({ ok: true, requestId: expect.any(String) });
    expect(await ask(visitor, 'visitor.cancel', { requestId: real.requestId })).toEqual({ ok: true });
    expect(visitor.events.filter((seen) => seen.event === 'error')).toEqual([]);
    visitor.close();
  });

  it("writes a socket's rejected-event warnings at most the documented number per minute, and the rest as one line at its close", async () => {
    const { rejectionLogsPerMinute } = limits.sockets;
    const visitor = await connect((await newVisitor('Noisy')).token);
    const socketId = visitor.socket.id!;
    const refusable = [
      { event: 'agent.accept', payload: { requestId: 'req_nope' } },
      { event: 'visitor.cancel', payload: { requestId: 'req_nope' } },
      { event: 'visitor.request', payload: { pool: 42 } },
      { event: 'no.such.event', payload: {} },
    ];
    const count = rejectionLogsPerMinute * 2 + rng.int(1, 5);
    const codes: string[] = [];
    for (let i = 0; i < count; i++) {
      const { event, payload } = rng.pick(refusable);
      const reply = await ask(visitor, event, payload);
      expect(reply.ok).toBe(false);
      codes.push(reply.error!.code);
    }
    const beforeClose = await untilLogged(abuse.output, (all) => all.filter(bySocket('rejected client event', socketId)).length >= rejectionLogsPerMinute);
    await sleep(300);
    const warnings = lines().filter(bySocket('rejected client event', socketId));
    expect(warnings.map((line) => (line.error as { code: string }).code)).toEqual(codes.slice(0, rejectionLogsPerMinute));
    expect(beforeClose.filter(bySocket('rejected client events not logged', socketId))).toEqual([]);
    expect(lines().filter(bySocket('rejected client events not logged', socketId))).toEqual([]);

    visitor.close();
    const logged = await untilLogged(abuse.output, (all) => all.some(bySocket('rejected client events not logged', socketId)));
    expect(logged.filter(bySocket('rejected client events not logged', socketId))).toEqual([
      expect.objectContaining({ withheld: count - rejectionLogsPerMinute, sinceAt: expect.any(Number) }),
    ]);
    expect(logged.filter(bySocket('rejected client event', socketId))).toHaveLength(rejectionLogsPerMinute);
  });

  it('refuses visitor sessions past the per-address limit with 429 and Retry-After', async () => {
    const { points, windowS } = limits.visitorSessions;
    const left = points - sessionsIssued;
    expect(left).toBeGreaterThan(0);
    const extra = 5;
    // At once, as a script would: exactly the sessions left are issued.
    const responses = await Promise.all(
      Array.from({ length: left + extra }, () =>
        fetch(`${abuse.url}/api/visitor-session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Crowd' }) }),
      ),
    );
    sessionsIssued += responses.filter((response) => response.status === 201).length;
    expect(responses.map((response) => response.status).sort((a, b) => a - b)).toEqual([...Array.from({ length: left }, () => 201), ...Array.from({ length: extra }, () => 429)]);
    for (const response of responses.filter((r) => r.status === 429)) {
      const retryAfter = Number(response.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(windowS);
      expect(await response.json()).toEqual({ error: { code: 'rate-limited', message: `Too many new sessions from this address; try again in ${String(retryAfter)} s.` } });
    }
  });

  it('refuses wrong passwords past the per-account limit with 429 and Retry-After, the right one too while locked, and then the address', async () => {
    const { accountFailures, addressFailures, lockS } = limits.login;
    const login = (email: string, password: string) =>
      fetch(`${abuse.url}/api/agents/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
    const expectLocked = async (response: Response) => {
      expect(response.status).toBe(429);
      const retryAfter = Number(response.headers.get('retry-after'));
      // The lock starts when the count is spent and a guess has failed: for a burst, when its first failure
      // is known, while the rest of it is still being hashed on a busy machine.
      expect(retryAfter).toBeGreaterThanOrEqual(lockS - 15);
      expect(retryAfter).toBeLessThanOrEqual(lockS);
      expect(await response.json()).toEqual({ error: { code: 'rate-limited', message: `Too many failed sign-ins; try again in ${String(retryAfter)} s.` } });
    };
    // The attempt that reaches the count is still a plain 401.
    for (let i = 0; i < accountFailures; i++) expect((await login(DEMO.ada.email, WRONG_PASSWORD)).status).toBe(401);
    await expectLocked(await login(DEMO.ada.email, DEMO.ada.password));
    await expectLocked(await login(DEMO.ada.email.toUpperCase(), WRONG_PASSWORD));
    // Other accounts from the address are not locked by it, until the address has guessed too often.
    expect((await login(DEMO.grace.email, DEMO.grace.password)).status).toBe(200);
    // The rest of the address's failures at once, each on an account of its own: none is locked yet, so all are 401.
    const guesses = Array.from({ length: addressFailures - accountFailures }, (_, i) => `nobody-${String(rng.int(0, 1e9))}-${String(i)}@example.com`);
    expect((await Promise.all(guesses.map((email) => login(email, WRONG_PASSWORD)))).map((response) => response.status)).toEqual(guesses.map(() => 401));
    await expectLocked(await login(DEMO.alan.email, DEMO.alan.password));

    const loginRefusals = (all: LogLine[]) => all.filter((line) => line.msg === 'agent login refused');
    const refused = loginRefusals(await untilLogged(abuse.output, (all) => loginRefusals(all).length >= addressFailures + 3));
    expect(refused.filter((line) => line.reason === 'locked')).toHaveLength(3);
    expect(refused.filter((line) => line.reason === 'wrong-credentials')).toHaveLength(addressFailures);
    // Two first locks: the account's, then the address's.
    expect(refused.flatMap((line) => (line.lockedForS === undefined ? [] : [line.lockedForS]))).toEqual([lockS, lockS]);
    for (const line of refused) expect(JSON.stringify(line)).not.toContain(WRONG_PASSWORD);
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
