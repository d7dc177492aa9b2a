/**
 * Turns a machine into a plain, JSON-serializable definition and that definition into an ELK graph.
 *
 * The definition is extracted from the machine's state nodes rather than taken from
 * `machine.toJSON()`, because toJSON leaves out every `always` transition (peerConnection's
 * `waitingForSignaling`, callSession's leg checks, routing's dispatch), and an inspector that hides
 * eventless transitions would misexplain why a state was left. The definition is still plain data,
 * so the server can send it to the browser, which never needs the machine modules themselves.
 */
import type { ElkExtendedEdge, ElkLabel, ElkNode } from 'elkjs/lib/elk-api';
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

export type StateType = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';

export interface TransitionDefinition {
  /** The event type as XState names it; `null` for an eventless (`always`) transition. */
  event: string | null;
  label: string;
  source: string;
  /** Full state ids; empty for a targetless transition, which only runs actions. */
  targets: string[];
  guard?: string;
  delay?: string | number;
}

export interface StateDefinition {
  /** The full id, e.g. `peerConnection.reconnecting.attempting`. */
  id: string;
  key: string;
  type: StateType;
  description?: string;
  /** Full ids of the initial children of a compound state. */
  initial?: string[];
  children: StateDefinition[];
  transitions: TransitionDefinition[];
}

export type MachineDefinition = StateDefinition;

function guardName(guard: unknown): string | undefined {
  if (!guard) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && 'type' in guard) return String((guard as { type: unknown }).type);
  // setup() names every guard, so only a higher-order or hand-written guard lands here.
  return 'inline guard';
}

/** The trigger part of an edge label, matching the names used in docs/machines diagrams. */
function trigger(eventType: string | null, delay: string | number | undefined): string {
  if (!eventType) return 'always';
  if (delay !== undefined) return `after ${delay}`;
  if (eventType.startsWith('xstate.done.actor.')) return `done ${eventType.slice('xstate.done.actor.'.length)}`;
  if (eventType.startsWith('xstate.error.actor.')) return `error ${eventType.slice('xstate.error.actor.'.length)}`;
  if (eventType.startsWith('xstate.snapshot.')) return `snapshot ${eventType.slice('xstate.snapshot.'.length)}`;
  if (eventType.startsWith('xstate.done.state.')) return 'done';
  return eventType;
}

export function transitionLabel(event: string | null, guard?: string, delay?: string | number): string {
  const head = trigger(event, delay);
  return guard ? `${head} [${guard}]` : head;
}

function defineTransition(transition: AnyTransitionDefinition): TransitionDefinition {
  const event = transition.eventType ? String(transition.eventType) : null;
  const guard = guardName(transition.guard);
  const delay = (transition as { delay?: string | number }).delay;
  const definition: TransitionDefinition = {
    event,
    label: transitionLabel(event, guard, delay),
    source: transition.source.id,
    targets: (transition.target ?? []).map((target: AnyStateNode) => target.id),
  };
  if (guard !== undefined) definition.guard = guard;
  if (delay !== undefined) definition.delay = delay;
  return definition;
}

function defineState(node: AnyStateNode): StateDefinition {
  const transitions = [...node.transitions.values()].flat() as AnyTransitionDefinition[];
  const always = (node.always ?? []) as AnyTransitionDefinition[];
  const definition: StateDefinition = {
    id: node.id,
    key: node.key,
    type: node.type,
    children: Object.values(node.states as Record<string, AnyStateNode>).map(defineState),
    transitions: [...transitions, ...always].map(defineTransition),
  };
  if (node.description) definition.description = node.description;
  const initial = node.type === 'compound' ? node.initial?.target : undefined;
  if (initial?.length) definition.initial = initial.map((target: AnyStateNode) => target.id);
  return definition;
}

export function machineDefinition(machine: AnyStateMachine): MachineDefinition {
  return defineState(machine.root);
}

// Label sizes are estimated rather than measured so that the same definition always lays out the
// same way, in Node and in every browser, without a DOM to measure text in.
export const CHAR_WIDTH = 7;
export const LABEL_HEIGHT = 16;
export const STATE_HEIGHT = 40;
export const STATE_PADDING_X = 16;
export const MIN_STATE_WIDTH = 72;
export const HEADER_HEIGHT = 28;
export const INITIAL_SIZE = 10;

export function textWidth(text: string): number {
  return text.length * CHAR_WIDTH;
}

export type NodeMeta =
  | {
      kind: 'state';
      stateId: string;
      label: string;
      type: StateType;
      description?: string;
      /** A child of a parallel state: drawn with a dashed border. */
      parallelRegion: boolean;
      /** The initial child of its compound parent. */
      initial: boolean;
    }
  | { kind: 'initial'; parentId: string };

export type EdgeMeta =
  | {
      kind: 'transition';
      label: string;
      source: string;
      target: string;
      event: string | null;
      guard?: string;
      delay?: string | number;
      /** The transition has no target; it is drawn as a loop on its source. */
      targetless: boolean;
    }
  | { kind: 'initial'; source: string; target: string };

export interface StatechartNode extends ElkNode {
  children: StatechartNode[];
  edges: StatechartEdge[];
  meta?: NodeMeta;
}

export interface StatechartEdge extends ElkExtendedEdge {
  meta: EdgeMeta;
  labels: ElkLabel[];
}

/** The ELK root: a frame around the machine's own node, so that machine-level transitions have a container. */
export interface StatechartGraph extends StatechartNode {
  machineId: string;
}

export const GRAPH_ROOT_ID = 'statechart:root';

export function initialMarkerId(parentId: string): string {
  return `${parentId}:initial`;
}

/**
 * The ELK graph of a definition: states nest as ELK children, so parallel regions become siblings
 * inside the parallel state's node; each compound state holds an initial marker with an edge to its
 * initial child; every transition is one edge per target, labelled with its event, guard or delay.
 */
export function toStatechartGraph(definition: MachineDefinition): StatechartGraph {
  const parents = new Map<string, string>();
  const nodes = new Map<string, StatechartNode>();
  const graph: StatechartGraph = { id: GRAPH_ROOT_ID, machineId: definition.id, children: [], edges: [] };
  nodes.set(GRAPH_ROOT_ID, graph);

  function build(state: StateDefinition, parent: StateDefinition | undefined): StatechartNode {
    const label = state.key;
    const node: StatechartNode = {
      id: state.id,
      children: [],
      edges: [],
      labels: [{ text: label, width: textWidth(label), height: LABEL_HEIGHT }],
      meta: {
        kind: 'state',
        stateId: state.id,
        label,
        type: state.type,
        parallelRegion: parent?.type === 'parallel',
        initial: parent?.initial?.includes(state.id) ?? false,
        ...(state.description ? { description: state.description } : {}),
      },
    };
    nodes.set(state.id, node);
    const width = Math.max(MIN_STATE_WIDTH, textWidth(label) + 2 * STATE_PADDING_X);
    if (state.children.length === 0) {
      node.width = width;
      node.height = STATE_HEIGHT;
      return node;
    }
    node.layoutOptions = {
      'elk.padding': `[top=${HEADER_HEIGHT + 8},left=12,bottom=12,right=12]`,
      'elk.nodeSize.constraints': 'MINIMUM_SIZE',
      'elk.nodeSize.minimum': `(${width}, ${HEADER_HEIGHT + STATE_HEIGHT})`,
    };
    for (const child of state.children) {
      parents.set(child.id, state.id);
      node.children.push(build(child, state));
    }
    if (state.initial?.length) {
      const markerId = initialMarkerId(state.id);
      node.children.push({ id: markerId, width: INITIAL_SIZE, height: INITIAL_SIZE, children: [], edges: [], meta: { kind: 'initial', parentId: state.id } });
      for (const target of state.initial) {
        node.edges.push({
          id: `${markerId}->${target}`,
          sources: [markerId],
          targets: [target],
          labels: [],
          meta: { kind: 'initial', source: markerId, target },
        });
      }
    }
    return node;
  }

  graph.children.push(build(definition, undefined));

  function ancestry(id: string): string[] {
    const chain = [id];
    for (let parent = parents.get(id); parent !== undefined; parent = parents.get(parent)) chain.push(parent);
    return chain;
  }

  // ELK wants each edge in the node that contains both ends: the lowest common ancestor, or the
  // source itself when the target lies inside it. A loop belongs to the node's parent.
  function container(source: string, target: string): StatechartNode {
    if (source === target) return nodes.get(parents.get(source) ?? GRAPH_ROOT_ID)!;
    const targetChain = new Set(ancestry(target));
    if (targetChain.has(source)) return nodes.get(source)!;
    const common = ancestry(source).find((id) => targetChain.has(id));
    return nodes.get(common ?? GRAPH_ROOT_ID)!;
  }

  function addTransitions(state: StateDefinition): void {
    state.transitions.forEach((transition, index) => {
      const targetless = transition.targets.length === 0;
      const targets = targetless ? [state.id] : transition.targets;
      targets.forEach((target, targetIndex) => {
        const id = `${state.id}:t${index}` + (targets.length > 1 ? `:${targetIndex}` : '');
        container(state.id, target).edges.push({
          id,
          sources: [state.id],
          targets: [target],
          labels: [{ id: `${id}:label`, text: transition.label, width: textWidth(transition.label), height: LABEL_HEIGHT }],
          meta: {
            kind: 'transition',
            label: transition.label,
            source: state.id,
            target,
            event: transition.event,
            targetless,
            ...(transition.guard !== undefined ? { guard: transition.guard } : {}),
            ...(transition.delay !== undefined ? { delay: transition.delay } : {}),
          },
        });
      });
    });
    state.children.forEach(addTransitions);
  }
  addTransitions(definition);

  return graph;
}

/** Every node of the graph below `node`, depth first, in document order. */
export function walkNodes(node: StatechartNode): StatechartNode[] {
  return node.children.flatMap((child) => [child, ...walkNodes(child)]);
}

/** Every edge of the graph, wherever ELK keeps it. */
export function walkEdges(node: StatechartNode): StatechartEdge[] {
  return [...node.edges, ...node.children.flatMap(walkEdges)];
}
