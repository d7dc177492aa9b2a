import { describe, expect, it, vi } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { connectionMachine, defaultConnectionTimings, withinResumeWindow, type ConnectionContext, type ConnectionInput, type PersonKind } from './connection.machine.ts';

/** Epoch ms of the simulated clock's zero. */
const BASE = 1_700_000_000_000;
const WINDOW = defaultConnectionTimings.resumeWindow;

const EFFECTS = [
  'bringAgentOnline',
  'takeAgentOffline',
  'announceLoss',
  'announceReturn',
  'giveUpRequests',
  'recordChosenStatus',
  'announceAway',
  'signOut',
  'cutOffSockets',
] as const;
type Effect = (typeof EFFECTS)[number];

function start(kind: PersonKind, patch: Partial<ConnectionInput> = {}) {
  const effects: Effect[] = [];
  const spies = Object.fromEntries(EFFECTS.map((name) => [name, vi.fn(() => void effects.push(name))]));
  const clock = new SimulatedClock();
  const machine = connectionMachine.provide({ actions: spies });
  const actor = createActor(machine, { clock, input: { kind, personId: kind === 'agent' ? 'ada' : 'v1', at: BASE, ...patch } });
  actor.start();
  const at = () => BASE + clock.now();
  const context = (): ConnectionContext => actor.getSnapshot().context;
  /** The effects performed since the last call. */
  const drain = () => effects.splice(0);
  /** Opens sockets `ids` for the person, one after the other. */
  const connect = (...ids: string[]) => ids.forEach((socketId) => actor.send({ type: 'socket.connected', socketId, at: at() }));
  return { actor, clock, at, context, drain, connect };
}

describe('connection', () => {
  it("counts an agent's sockets: online while one is open, lost only when the last goes", () => {
    const { actor, at, context, drain } = start('agent');
    actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
    actor.send({ type: 'socket.ready', socketId: 's1', resumed: false, at: at() });
    expect(drain()).toEqual(['bringAgentOnline']);
    // A second tab: the agent was never gone, and whatever waits for them hears they are here.
    actor.send({ type: 'socket.connected', socketId: 's2', at: at() });
    actor.send({ type: 'socket.ready', socketId: 's2', resumed: false, at: at() });
    expect(drain()).toEqual(['bringAgentOnline', 'announceReturn']);
    actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
    expect(drain()).toEqual([]);
    expect(context().sockets).toEqual(['s2']);
    // A socket the actor does not know changes nothing.
    actor.send({ type: 'socket.disconnected', socketId: 'elsewhere', at: at() });
    expect(actor.getSnapshot().value).toBe('online');
    actor.send({ type: 'socket.disconnected', socketId: 's2', at: at() });
    expect(drain()).toEqual(['takeAgentOffline', 'announceLoss']);
    expect(actor.getSnapshot().value).toBe('grace');
  });

  it('gives a visitor the resume window, then gives up their request; a socket back in time keeps it', () => {
    const { actor, clock, at, drain } = start('visitor');
    actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
    actor.send({ type: 'socket.ready', socketId: 's1', resumed: false, at: at() });
    expect(drain()).toEqual([]);
    actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
    expect(drain()).toEqual(['announceLoss']);
    clock.increment(WINDOW - 1);
    actor.send({ type: 'socket.connected', socketId: 's2', at: at() });
    actor.send({ type: 'socket.ready', socketId: 's2', resumed: true, at: at() });
    expect(drain()).toEqual(['announceReturn']);
    clock.increment(WINDOW * 2);
    expect(actor.getSnapshot().value).toBe('online');

    actor.send({ type: 'socket.disconnected', socketId: 's2', at: at() });
    clock.increment(WINDOW);
    expect(drain()).toEqual(['announceLoss', 'giveUpRequests']);
    expect(actor.getSnapshot().status).toBe('done');
  });

  it("lets an agent's grace run out without giving anything up: routing has its own grace for the agent", () => {
    const { actor, clock, at, drain } = start('agent');
    actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
    actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
    drain();
    clock.increment(WINDOW);
    expect(drain()).toEqual([]);
    expect(actor.getSnapshot()).toMatchObject({ value: 'gone', status: 'done' });
  });

  it('a visitor is back only with a session taken up; a fresh socket or one already gone is not', () => {
    const { actor, at, drain } = start('visitor');
    actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
    actor.send({ type: 'socket.connected', socketId: 's2', at: at() });
    actor.send({ type: 'socket.ready', socketId: 's1', resumed: false, at: at() });
    actor.send({ type: 'socket.disconnected', socketId: 's2', at: at() });
    actor.send({ type: 'socket.ready', socketId: 's2', resumed: true, at: at() });
    expect(drain()).toEqual([]);
    actor.send({ type: 'session.resumed', socketId: 's1', at: at() });
    expect(drain()).toEqual(['announceReturn']);
  });

  it('an agent going away is lost to whatever holds them; choosing available only records it', () => {
    const { actor, at, drain, connect } = start('agent');
    connect('s1');
    actor.send({ type: 'presence.chosen', status: 'away', at: at() });
    expect(drain()).toEqual(['recordChosenStatus', 'announceAway']);
    actor.send({ type: 'presence.chosen', status: 'available', at: at() });
    expect(drain()).toEqual(['recordChosenStatus']);
  });

  it('logging out signs the agent off once; their sockets close without a loss, and the last ends the actor', () => {
    const { actor, at, drain, connect } = start('agent');
    connect('s1', 's2');
    actor.send({ type: 'session.loggedOut', socketIds: ['s1', 's2'], at: at() });
    expect(drain()).toEqual(['signOut', 'cutOffSockets']);
    expect(actor.getSnapshot().value).toBe('loggedOut');
    actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
    actor.send({ type: 'socket.disconnected', socketId: 's2', at: at() });
    expect(drain()).toEqual([]);
    expect(actor.getSnapshot()).toMatchObject({ value: 'closed', status: 'done' });
  });

  it("logging out one login cuts off only its sockets: the agent's other login keeps them online, and a cut-off socket closing is no loss", () => {
    const { actor, at, drain, connect, context } = start('agent');
    connect('s1', 's2', 's3');
    actor.send({ type: 'session.loggedOut', socketIds: ['s1', 's3'], at: at() });
    expect(drain()).toEqual(['cutOffSockets']);
    expect(actor.getSnapshot().value).toBe('online');
    expect(context()).toMatchObject({ sockets: ['s2'], revoked: ['s1', 's3'] });
    actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
    expect(drain()).toEqual([]);
    expect(context()).toMatchObject({ sockets: ['s2'], revoked: ['s3'] });
    actor.send({ type: 'socket.disconnected', socketId: 's2', at: at() });
    expect(drain()).toEqual(['takeAgentOffline', 'announceLoss']);
    expect(actor.getSnapshot().value).toBe('grace');
    actor.send({ type: 'socket.disconnected', socketId: 's3', at: at() });
    expect(context()).toMatchObject({ sockets: [], revoked: [] });
  });

  it('a cut-off socket does not hold the actor open: a new login after a logout is online on its own socket', () => {
    const { actor, at, drain, connect, context } = start('agent');
    connect('s1');
    actor.send({ type: 'session.loggedOut', socketIds: ['s1'], at: at() });
    drain();
    connect('s2');
    actor.send({ type: 'socket.ready', socketId: 's2', resumed: false, at: at() });
    expect(drain()).toEqual(['bringAgentOnline']);
    expect(context()).toMatchObject({ sockets: ['s2'], revoked: ['s1'] });
    // The old socket is still open, but the new login's going is the agent's last socket going.
    actor.send({ type: 'socket.disconnected', socketId: 's2', at: at() });
    expect(drain()).toEqual(['takeAgentOffline', 'announceLoss']);
    expect(actor.getSnapshot().value).toBe('grace');
  });

  it('a visitor cannot log out', () => {
    const { actor, at, drain } = start('visitor');
    actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
    actor.send({ type: 'session.loggedOut', socketIds: ['s1'], at: at() });
    expect(drain()).toEqual([]);
    expect(actor.getSnapshot().value).toBe('online');
  });

  it('a person restored from before the process gets their grace from when it opened', () => {
    const openedAt = BASE + 5_000;
    const { actor, clock, drain, context } = start('visitor', { windowFrom: openedAt });
    clock.increment(5_000);
    actor.send({ type: 'process.opened', at: openedAt });
    expect(context()).toMatchObject({ windowFrom: openedAt, deadlineAt: openedAt + WINDOW });
    clock.increment(WINDOW);
    expect(drain()).toEqual(['giveUpRequests']);
  });

  it('re-arms its grace at the original deadline, and a deadline already past fires at once', () => {
    const { actor, clock, at, context, drain } = start('visitor');
    actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
    actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
    drain();
    const deadline = context().deadlineAt!;
    clock.increment(1_000);
    actor.send({ type: 'timers.rearm', at: at() });
    expect(context()).toMatchObject({ deadlineAt: deadline, timerMs: WINDOW - 1_000 });
    clock.increment(WINDOW - 1_001);
    expect(drain()).toEqual([]);
    clock.increment(1);
    expect(drain()).toEqual(['giveUpRequests']);

    const late = start('visitor');
    late.actor.send({ type: 'socket.connected', socketId: 's1', at: late.at() });
    late.actor.send({ type: 'socket.disconnected', socketId: 's1', at: late.at() });
    late.drain();
    late.actor.send({ type: 'timers.rearm', at: late.context().deadlineAt! + 5_000 });
    expect(late.context().timerMs).toBe(0);
    late.clock.increment(0);
    expect(late.drain()).toEqual(['giveUpRequests']);
  });

  describe('withinResumeWindow', () => {
    it('counts from the last socket going; another open socket keeps the session whatever the time', () => {
      const { actor, clock, at, context } = start('agent', { windowFrom: BASE });
      actor.send({ type: 'socket.connected', socketId: 's1', at: at() });
      expect(withinResumeWindow(context(), at() + WINDOW)).toBe(true);
      expect(withinResumeWindow(context(), at() + WINDOW + 1)).toBe(false);
      clock.increment(10_000);
      actor.send({ type: 'socket.disconnected', socketId: 's1', at: at() });
      const lostAt = at();
      actor.send({ type: 'socket.connected', socketId: 's2', at: at() });
      expect(withinResumeWindow(context(), lostAt + WINDOW)).toBe(true);
      expect(withinResumeWindow(context(), lostAt + WINDOW + 1)).toBe(false);
      actor.send({ type: 'socket.connected', socketId: 's3', at: at() });
      expect(withinResumeWindow(context(), lostAt + WINDOW * 10)).toBe(true);
    });
  });
});
