import { describe, expect, it } from 'vitest';
import { type AnyStateMachine, type AnyStateNode, type AnyTransitionDefinition } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import config from '../../../stately.config.ts';
import { edgeLabel, loadMachine } from '../../../scripts/machine-docs.ts';
import {
  GRAPH_ROOT_ID,
  machineDefinition,
  toStatechartGraph,
  walkEdges,
  walkNodes,
  type StatechartNode,
} from './statechartGraph.ts';
import { fixtureMachine } from './__fixtures__/nestedParallel.ts';

function shape(node: StatechartNode): unknown {
  return {
    id: node.id,
    meta: node.meta,
    children: node.children.map(shape),
    edges: node.edges.map((edge) => ({ id: edge.id, sources: edge.sources, targets: edge.targets, label: edge.labels[0]?.text })),
  };
}

const state = (stateId: string, label: string, type: string, extra: Record<string, unknown> = {}) => ({
  kind: 'state',
  stateId,
  label,
  type,
  parallelRegion: false,
  initial: false,
  ...extra,
});

describe('machineDefinition', () => {
  it('keeps always transitions, guards and delay names, which toJSON drops or hides', () => {
    const definition = machineDefinition(fixtureMachine);
    const video = definition.children[1]!.children[1]!;
    expect(video.children[0]!.transitions).toEqual([
      { event: null, label: 'always [isReady]', source: 'fx.running.video.on', targets: ['fx.running.video.off'], guard: 'isReady' },
    ]);
    const audioOff = definition.children[1]!.children[0]!.children[1]!;
    expect(audioOff.transitions).toEqual([
      {
        event: 'xstate.after.grace.fx.running.audio.off',
        label: 'after grace',
        source: 'fx.running.audio.off',
        targets: ['fx.running.audio.on'],
        delay: 'grace',
      },
    ]);
    expect(JSON.stringify(fixtureMachine.toJSON())).not.toContain('always');
  });

  it('is plain data that survives JSON and converts the same afterwards', () => {
    const definition = machineDefinition(fixtureMachine);
    const wire = JSON.parse(JSON.stringify(definition)) as typeof definition;
    expect(wire).toEqual(definition);
    expect(toStatechartGraph(wire)).toEqual(toStatechartGraph(definition));
  });
});

describe('toStatechartGraph on a nested and parallel fixture', () => {
  it('nests states, marks regions and initial states, and puts each edge in its lowest common container', () => {
    const graph = toStatechartGraph(machineDefinition(fixtureMachine));
    expect(graph.id).toBe(GRAPH_ROOT_ID);
    expect(graph.machineId).toBe('fx');
    expect(shape(graph)).toEqual({
      id: GRAPH_ROOT_ID,
      meta: undefined,
      children: [
        {
          id: 'fx',
          meta: state('fx', 'fx', 'compound'),
          children: [
            {
              id: 'fx.idle',
              meta: state('fx.idle', 'idle', 'atomic', { initial: true, description: 'Waiting <first> & last' }),
              children: [],
              edges: [],
            },
            {
              id: 'fx.running',
              meta: state('fx.running', 'running', 'parallel'),
              children: [
                {
                  id: 'fx.running.audio',
                  meta: state('fx.running.audio', 'audio', 'compound', { parallelRegion: true }),
                  children: [
                    { id: 'fx.running.audio.on', meta: state('fx.running.audio.on', 'on', 'atomic', { initial: true }), children: [], edges: [] },
                    { id: 'fx.running.audio.off', meta: state('fx.running.audio.off', 'off', 'atomic'), children: [], edges: [] },
                    { id: 'fx.running.audio:initial', meta: { kind: 'initial', parentId: 'fx.running.audio' }, children: [], edges: [] },
                  ],
                  edges: [
                    { id: 'fx.running.audio:initial->fx.running.audio.on', sources: ['fx.running.audio:initial'], targets: ['fx.running.audio.on'], label: undefined },
                    { id: 'fx.running.audio.on:t0', sources: ['fx.running.audio.on'], targets: ['fx.running.audio.off'], label: 'mute' },
                    { id: 'fx.running.audio.off:t0', sources: ['fx.running.audio.off'], targets: ['fx.running.audio.on'], label: 'after grace' },
                  ],
                },
                {
                  id: 'fx.running.video',
                  meta: state('fx.running.video', 'video', 'compound', { parallelRegion: true }),
                  children: [
                    { id: 'fx.running.video.on', meta: state('fx.running.video.on', 'on', 'atomic', { initial: true }), children: [], edges: [] },
                    { id: 'fx.running.video.off', meta: state('fx.running.video.off', 'off', 'atomic'), children: [], edges: [] },
                    { id: 'fx.running.video:initial', meta: { kind: 'initial', parentId: 'fx.running.video' }, children: [], edges: [] },
                  ],
                  edges: [
                    { id: 'fx.running.video:initial->fx.running.video.on', sources: ['fx.running.video:initial'], targets: ['fx.running.video.on'], label: undefined },
                    { id: 'fx.running.video.on:t0', sources: ['fx.running.video.on'], targets: ['fx.running.video.off'], label: 'always [isReady]' },
                  ],
                },
              ],
              edges: [
                // One edge per target of a multi-target transition, each kept inside the parallel state.
                { id: 'fx.running:t0:0', sources: ['fx.running'], targets: ['fx.running.audio.off'], label: 'both' },
                { id: 'fx.running:t0:1', sources: ['fx.running'], targets: ['fx.running.video.off'], label: 'both' },
              ],
            },
            { id: 'fx.done', meta: state('fx.done', 'done', 'final'), children: [], edges: [] },
            { id: 'fx:initial', meta: { kind: 'initial', parentId: 'fx' }, children: [], edges: [] },
          ],
          edges: [
            { id: 'fx:initial->fx.idle', sources: ['fx:initial'], targets: ['fx.idle'], label: undefined },
            { id: 'fx:t0', sources: ['fx'], targets: ['fx.idle'], label: 'reset' },
            { id: 'fx.idle:t0', sources: ['fx.idle'], targets: ['fx.running'], label: 'start [isReady]' },
            // A targetless transition loops on its source, so it lives in the source's parent.
            { id: 'fx.idle:t1', sources: ['fx.idle'], targets: ['fx.idle'], label: 'ping' },
          ],
        },
      ],
      edges: [],
    });
  });

  it('gives leaves a size that fits their name and labels a size that fits their text', () => {
    const graph = toStatechartGraph(machineDefinition(fixtureMachine));
    const leaves = walkNodes(graph).filter((node) => node.meta?.kind === 'state' && node.children.length === 0);
    for (const leaf of leaves) {
      const label = leaf.labels![0]!;
      expect(leaf.width).toBeGreaterThanOrEqual(label.width!);
      expect(leaf.height).toBeGreaterThan(0);
    }
    for (const edge of walkEdges(graph).filter((e) => e.meta.kind === 'transition')) {
      expect(edge.labels[0]!.width).toBe(edge.labels[0]!.text!.length * 7);
    }
  });
});

function ownTransitions(node: AnyStateNode): AnyTransitionDefinition[] {
  return [...([...node.transitions.values()].flat() as AnyTransitionDefinition[]), ...((node.always ?? []) as AnyTransitionDefinition[])];
}

describe.each(config.machines.map((entry) => [entry.name, entry] as const))('toStatechartGraph on %s', (_name, entry) => {
  it('has every state node exactly once, under its full id and inside its parent', async () => {
    const machine: AnyStateMachine = await loadMachine(entry);
    const graph = toStatechartGraph(machineDefinition(machine));
    const stateNodes = walkNodes(graph).filter((node) => node.meta?.kind === 'state');
    const expected = [machine.root, ...getStateNodes(machine.root)].map((node) => node.id);
    expect(stateNodes.map((node) => node.id).sort()).toEqual([...new Set(expected)].sort());
    expect(stateNodes).toHaveLength(expected.length);

    for (const node of [machine.root, ...getStateNodes(machine.root)]) {
      const graphNode = stateNodes.find((candidate) => candidate.id === node.id)!;
      expect(graphNode.meta).toMatchObject({ type: node.type, label: node.key });
      const childIds = graphNode.children.filter((child) => child.meta?.kind === 'state').map((child) => child.id);
      expect(childIds).toEqual(Object.values(node.states as Record<string, AnyStateNode>).map((child) => child.id));
      expect(graphNode.children.some((child) => child.meta?.kind === 'initial')).toBe(node.type === 'compound');
    }
  });

  it('draws every transition as an edge per target with the event, guard or delay as its label', async () => {
    const machine: AnyStateMachine = await loadMachine(entry);
    const graph = toStatechartGraph(machineDefinition(machine));
    const expected: string[] = [];
    for (const node of [machine.root, ...getStateNodes(machine.root)]) {
      for (const transition of ownTransitions(node)) {
        const targets: readonly AnyStateNode[] = transition.target?.length ? transition.target : [node];
        for (const target of targets) expected.push(`${node.id} -> ${target.id} : ${edgeLabel(transition)}`);
      }
    }
    const actual = walkEdges(graph)
      .filter((edge) => edge.meta.kind === 'transition')
      .map((edge) => `${edge.meta.source} -> ${edge.meta.target} : ${edge.labels[0]!.text}`);
    expect(actual.sort()).toEqual(expected.sort());
    expect(new Set(walkEdges(graph).map((edge) => edge.id)).size).toBe(walkEdges(graph).length);
  });
});
