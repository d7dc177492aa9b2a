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

/** The expected shape of a state with no children and no edges of its own. */
const leaf = (stateId: string, label: string, type: string, extra: Record<string, unknown> = {}) => ({
  id: stateId,
  meta: state(stateId, label, type, extra),
  children: [],
  edges: [],
});

/** The expected shape of the marker a compound state's initial edge starts from. */
const initialMarker = (parentId: string) => ({ id: `${parentId}:initial`, meta: { kind: 'initial', parentId }, children: [], edges: [] });

/** The expected shape of an edge from one state to one other, with its first label's text. */
const edge = (id: string, source: string, target: string, label?: string) => ({ id, sources: [source], targets: [target], label });

/**
 * The expected shape of the fixture's parallel region `fx.running.<name>`: states on (initial) and off, its
 * initial edge, then `edges`.
 */
function onOffRegion(name: string, edges: ReturnType<typeof edge>[]) {
  const id = `fx.running.${name}`;
  return {
    id,
    meta: state(id, name, 'compound', { parallelRegion: true }),
    children: [leaf(`${id}.on`, 'on', 'atomic', { initial: true }), leaf(`${id}.off`, 'off', 'atomic'), initialMarker(id)],
    edges: [edge(`${id}:initial->${id}.on`, `${id}:initial`, `${id}.on`), ...edges],
  };
}

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
            leaf('fx.idle', 'idle', 'atomic', { initial: true, description: 'Waiting <first> & last' }),
            {
              id: 'fx.running',
              meta: state('fx.running', 'running', 'parallel'),
              children: [
                onOffRegion('audio', [
                  edge('fx.running.audio.on:t0', 'fx.running.audio.on', 'fx.running.audio.off', 'mute'),
                  edge('fx.running.audio.off:t0', 'fx.running.audio.off', 'fx.running.audio.on', 'after grace'),
                ]),
                onOffRegion('video', [edge('fx.running.video.on:t0', 'fx.running.video.on', 'fx.running.video.off', 'always [isReady]')]),
              ],
              edges: [
                // One edge per target of a multi-target transition, each kept inside the parallel state.
                edge('fx.running:t0:0', 'fx.running', 'fx.running.audio.off', 'both'),
                edge('fx.running:t0:1', 'fx.running', 'fx.running.video.off', 'both'),
              ],
            },
            leaf('fx.done', 'done', 'final'),
            initialMarker('fx'),
          ],
          edges: [
            edge('fx:initial->fx.idle', 'fx:initial', 'fx.idle'),
            edge('fx:t0', 'fx', 'fx.idle', 'reset'),
            edge('fx.idle:t0', 'fx.idle', 'fx.running', 'start [isReady]'),
            // A targetless transition loops on its source, so it lives in the source's parent.
            edge('fx.idle:t1', 'fx.idle', 'fx.idle', 'ping'),
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
