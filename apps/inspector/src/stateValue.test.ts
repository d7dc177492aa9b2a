import { callSessionMachine, peerConnectionMachine, routingMachine, signalingMachine, visitorCallMachine } from '@callchart/machines';
import type { AnyStateMachine, StateValue } from 'xstate';
import { describe, expect, it } from 'vitest';
import { fixtureMachine } from './__fixtures__/nestedParallel.ts';
import { machineDefinition } from './statechartGraph.ts';
import { activeStateIds, parseStoredState, stateLabel } from './stateValue.ts';

/** What XState itself holds active for a value, root left out as activeStateIds leaves it out. */
function xstateActiveIds(machine: AnyStateMachine, value: StateValue): string[] {
  // `_nodes` is the snapshot's own list of active state nodes; no public API lists them.
  const snapshot = machine.resolveState({ value, context: {} as never }) as unknown as { _nodes: { id: string }[] };
  return snapshot._nodes.map((node) => node.id).filter((id) => id !== machine.id);
}

describe('stateLabel', () => {
  it('reads a flat state as its name and nested states as a dotted path', () => {
    expect(stateLabel('connected')).toBe('connected');
    expect(stateLabel({ reconnecting: 'attempting' })).toBe('reconnecting.attempting');
    expect(stateLabel({ a: { b: { c: 'd' } } })).toBe('a.b.c.d');
  });

  it('puts parallel regions in parentheses, an atomic region by its name alone', () => {
    expect(stateLabel({ inCall: { media: {}, peer: 'present' } })).toBe('inCall(media, peer.present)');
    expect(stateLabel({ active: { agent: 'up', visitor: 'lost', session: 'paused' } })).toBe('active(agent.up, visitor.lost, session.paused)');
    expect(stateLabel({ outer: { inner: { x: 'a', y: { z: 'b' } } } })).toBe('outer.inner(x.a, y.z.b)');
    // A machine whose root is parallel.
    expect(stateLabel({ x: 'a', y: 'b' })).toBe('x.a, y.b');
  });

  it('reads anything else as empty', () => {
    expect(stateLabel(null)).toBe('');
    expect(stateLabel(undefined)).toBe('');
    expect(stateLabel(['a'])).toBe('');
  });
});

describe('activeStateIds', () => {
  it('gives a nested state and its ancestors, not the root', () => {
    const definition = machineDefinition(peerConnectionMachine);
    expect(activeStateIds(definition, 'unstable')).toEqual(['peerConnection.unstable']);
    expect(activeStateIds(definition, { reconnecting: 'waitingForPeer' })).toEqual(['peerConnection.reconnecting', 'peerConnection.reconnecting.waitingForPeer']);
    expect(activeStateIds(definition, { connected: { stalled: 'sampling' } })).toEqual([
      'peerConnection.connected',
      'peerConnection.connected.stalled',
      'peerConnection.connected.stalled.sampling',
    ]);
  });

  it('gives every region of a parallel state, atomic regions included', () => {
    const definition = machineDefinition(visitorCallMachine);
    expect(activeStateIds(definition, { inCall: { media: {}, peer: 'away' } }).sort()).toEqual(
      ['visitorCall.inCall', 'visitorCall.inCall.media', 'visitorCall.inCall.peer', 'visitorCall.inCall.peer.away'].sort(),
    );
    const fixture = machineDefinition(fixtureMachine);
    expect(activeStateIds(fixture, { running: { audio: 'off', video: 'on' } }).sort()).toEqual(xstateActiveIds(fixtureMachine, { running: { audio: 'off', video: 'on' } }).sort());
  });

  it('agrees with XState for every state of the fixture and the real machines', () => {
    const cases: [AnyStateMachine, StateValue][] = [
      [fixtureMachine, 'idle'],
      [fixtureMachine, { running: { audio: 'off', video: 'on' } }],
      [fixtureMachine, 'done'],
      [peerConnectionMachine, { reconnecting: 'waitingForSignaling' }],
      [signalingMachine, { connected: 'ready' }],
      [signalingMachine, { reconnecting: 'offline' }],
      [visitorCallMachine, { waiting: 'queued' }],
      [visitorCallMachine, { inCall: { media: {}, peer: 'present' } }],
      [callSessionMachine, { active: 'paused' }],
      [routingMachine, { connected: 'agentAway' }],
    ];
    for (const [machine, value] of cases) {
      expect(activeStateIds(machineDefinition(machine), value).sort(), JSON.stringify(value)).toEqual(xstateActiveIds(machine, value).sort());
    }
  });

  it('enters the default children of a value that stops at a container', () => {
    expect(activeStateIds(machineDefinition(peerConnectionMachine), 'reconnecting')).toEqual(['peerConnection.reconnecting', 'peerConnection.reconnecting.checking']);
    expect(activeStateIds(machineDefinition(fixtureMachine), 'running').sort()).toEqual(
      ['fx.running', 'fx.running.audio', 'fx.running.audio.on', 'fx.running.video', 'fx.running.video.on'].sort(),
    );
  });

  it('keeps what matches of a value the definition does not know, and nothing for a non-value', () => {
    const definition = machineDefinition(peerConnectionMachine);
    expect(activeStateIds(definition, 'teleporting')).toEqual([]);
    expect(activeStateIds(definition, { reconnecting: 'dreaming' })).toEqual(['peerConnection.reconnecting']);
    expect(activeStateIds(definition, null)).toEqual([]);
  });
});

describe('parseStoredState', () => {
  it('reads back the names the store keeps', () => {
    expect(parseStoredState(null)).toBeNull();
    expect(parseStoredState('connected')).toBe('connected');
    expect(parseStoredState('reconnecting.attempting')).toEqual({ reconnecting: 'attempting' });
    expect(parseStoredState('active.(agent.up,visitor.lost,session.paused)')).toEqual({ active: { agent: 'up', visitor: 'lost', session: 'paused' } });
    expect(parseStoredState('inCall.(media.(),peer.present)')).toEqual({ inCall: { media: {}, peer: 'present' } });
    expect(parseStoredState('a.(b.(c.d))')).toEqual({ a: { b: { c: 'd' } } });
    expect(parseStoredState('x.a,y.b')).toEqual({ x: 'a', y: 'b' });
  });

  it('keeps a name it cannot read as it is', () => {
    for (const name of ['a.(b.c', 'a..b', 'a.(b.c))', '.a', 'a,']) expect(parseStoredState(name)).toBe(name);
  });

  it('labels a parsed name the way the live value would be labelled', () => {
    expect(stateLabel(parseStoredState('active.(agent.up,visitor.up,session.live)'))).toBe('active(agent.up, visitor.up, session.live)');
  });
});
