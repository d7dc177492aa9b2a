/**
 * Ephemeral TURN credentials against a real coturn (`use-auth-secret`): a call in Chromium relays on
 * credentials the server minted for that very call, coturn refuses them once expired or when another
 * secret signed them, and static ICE_SERVERS still work on a relay with a fixed user when TURN_SECRET is
 * unset.
 */
import { describe, expect, it } from 'vitest';
import { browserSuite } from '../support/browser-suite.ts';
import { connectCall } from '../support/call-steps.ts';
import { openAgent, openVisitor, visitorCallId } from '../support/e2e.ts';
import { allocate } from '../support/turn-allocate.ts';
import { TURN_USER, TurnServer } from '../support/turn.ts';

// The server's default TURN_CREDENTIAL_TTL_SECONDS.
const DEFAULT_TTL_MS = 4 * 3_600_000;
// From the mint at the call's start to this test reading coturn's log, with a loaded machine's slack.
const MINT_SLACK_MS = 120_000;

/** The users coturn granted an allocation to, in the order it did. */
const allocatedUsers = (turn: TurnServer) =>
  [...turn.output().matchAll(/user <([^>]+)>: incoming packet ALLOCATE processed, success/g)].map((match) => match[1]!);

describe('ephemeral TURN credentials', () => {
  const suite = browserSuite();

  it('relays a real call on credentials minted for that call, expiring after the TTL', async () => {
    const app = await suite.startApp();
    const visitor = await openVisitor(suite.browser, app);
    const ada = await openAgent(suite.browser, app, 'ada');
    const before = Date.now();
    await connectCall(visitor, ada, 'ada');
    const callId = await visitorCallId(visitor.page);

    const users = allocatedUsers(suite.turn);
    // Both legs relay (the app's policy is relay-only), and only on this call's credentials.
    expect(users.length).toBeGreaterThanOrEqual(2);
    expect(new Set(users.map((user) => user.split(':').slice(1).join(':')))).toEqual(new Set([callId]));
    const expiresAt = Number(users[0]!.split(':')[0]) * 1_000;
    expect(expiresAt).toBeGreaterThan(before + DEFAULT_TTL_MS - MINT_SLACK_MS);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + DEFAULT_TTL_MS);
  }, 60_000);

  it('is refused by coturn once expired, or when signed with another secret; fresh ones are granted', async () => {
    const turn = suite.turn;
    const now = Date.now();
    expect(await allocate(turn.listeningIp, turn.port, turn.mint('call-fresh', now + 60_000))).toEqual({ ok: true });
    expect(await allocate(turn.listeningIp, turn.port, turn.mint('call-expired', now - 1_000))).toEqual({ ok: false, code: 401, reason: 'Unauthorized' });
    const other = await TurnServer.create();
    suite.later(() => other.dispose());
    expect(await allocate(turn.listeningIp, turn.port, other.mint('call-forged', now + 60_000))).toEqual({ ok: false, code: 401, reason: 'Unauthorized' });
    // A static user is no way in on a relay that takes only minted credentials.
    expect(await allocate(turn.listeningIp, turn.port, TURN_USER)).toEqual({ ok: false, code: 401, reason: 'Unauthorized' });
  });

  it('without TURN_SECRET hands out the static ICE_SERVERS, and a call relays on them', async () => {
    const fixed = await TurnServer.create({ auth: 'static' });
    suite.later(() => fixed.dispose());
    await fixed.start();
    // Empty counts as unset: the suite's relay settings are replaced by the static relay's.
    const app = await suite.startApp({ TURN_SECRET: '', TURN_URLS: '', ...fixed.serverEnv });
    const visitor = await openVisitor(suite.browser, app);
    const ada = await openAgent(suite.browser, app, 'ada');
    await connectCall(visitor, ada, 'ada');
    const users = allocatedUsers(fixed);
    expect(users.length).toBeGreaterThanOrEqual(2);
    expect(new Set(users)).toEqual(new Set([TURN_USER.username]));
  }, 60_000);
});
