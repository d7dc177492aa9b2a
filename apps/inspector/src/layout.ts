/**
 * Lays a statechart graph out with ELK and flattens the result into absolutely positioned boxes and
 * edge polylines, so the renderer never has to know ELK's coordinate conventions.
 */
// The bundled build runs ELK in the calling thread, in Node and in the browser, without a worker file
// to serve.
import ELK from 'elkjs/lib/elk.bundled.js';
import type { ElkEdgeSection, ElkNode, ElkPoint } from 'elkjs/lib/elk-api';
import type { StateType, StatechartEdge, StatechartGraph, StatechartNode } from './statechartGraph.ts';

export interface Point {
  x: number;
  y: number;
}

export interface Rect extends Point {
  width: number;
  height: number;
}

export interface StateBox extends Rect {
  kind: 'state';
  id: string;
  label: string;
  type: StateType;
  description?: string;
  parallelRegion: boolean;
  initial: boolean;
  /** The id of the enclosing state; undefined for the machine itself. */
  parentId?: string;
  depth: number;
}

export interface InitialMarker extends Rect {
  kind: 'initial';
  id: string;
  parentId: string;
}

export interface EdgePath {
  id: string;
  kind: 'transition' | 'initial';
  source: string;
  target: string;
  label: string;
  points: Point[];
  labelBox?: Rect;
}

export interface StatechartLayout {
  width: number;
  height: number;
  /** Parents before their children, so painting in order draws children on top. */
  states: StateBox[];
  initialMarkers: InitialMarker[];
  edges: EdgePath[];
}

const layoutOptions: Record<string, string> = {
  'elk.algorithm': 'layered',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  'elk.direction': 'DOWN',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.edgeLabels.placement': 'CENTER',
  'elk.layered.spacing.nodeNodeBetweenLayers': '40',
  'elk.spacing.nodeNode': '32',
  'elk.spacing.edgeLabel': '4',
  'elk.padding': '[top=16,left=16,bottom=16,right=16]',
  // Absolute coordinates everywhere: ELK's default makes edges relative to their container, which
  // for an edge into a descendant is not the node the edge is listed in.
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
};

const elk = new ELK();

function sectionPoints(section: ElkEdgeSection): Point[] {
  return [section.startPoint, ...(section.bendPoints ?? []), section.endPoint].map((p: ElkPoint) => ({ x: p.x, y: p.y }));
}

function rect(shape: { x?: number; y?: number; width?: number; height?: number }): Rect {
  return { x: shape.x ?? 0, y: shape.y ?? 0, width: shape.width ?? 0, height: shape.height ?? 0 };
}

export async function layoutStatechart(graph: StatechartGraph): Promise<StatechartLayout> {
  // ELK writes positions into the graph it is given; the caller's graph stays reusable.
  const input = structuredClone(graph) as StatechartGraph;
  input.layoutOptions = { ...layoutOptions, ...graph.layoutOptions };
  const result = (await elk.layout(input as ElkNode)) as StatechartGraph;

  const layout: StatechartLayout = { width: result.width ?? 0, height: result.height ?? 0, states: [], initialMarkers: [], edges: [] };

  function visitEdges(edges: StatechartEdge[]): void {
    for (const edge of edges) {
      const points = (edge.sections ?? []).flatMap(sectionPoints);
      const label = edge.labels[0];
      const path: EdgePath = {
        id: edge.id,
        kind: edge.meta.kind,
        source: edge.meta.source,
        target: edge.meta.target,
        label: edge.meta.kind === 'transition' ? edge.meta.label : '',
        points,
      };
      if (label) path.labelBox = rect(label);
      layout.edges.push(path);
    }
  }

  function visit(node: StatechartNode, parentId: string | undefined, depth: number): void {
    const meta = node.meta;
    if (meta?.kind === 'initial') {
      layout.initialMarkers.push({ kind: 'initial', id: node.id, parentId: meta.parentId, ...rect(node) });
    } else if (meta?.kind === 'state') {
      const box: StateBox = {
        kind: 'state',
        id: meta.stateId,
        label: meta.label,
        type: meta.type,
        parallelRegion: meta.parallelRegion,
        initial: meta.initial,
        depth,
        ...rect(node),
      };
      if (meta.description !== undefined) box.description = meta.description;
      if (parentId !== undefined) box.parentId = parentId;
      layout.states.push(box);
    }
    visitEdges(node.edges);
    const childParent = meta?.kind === 'state' ? meta.stateId : undefined;
    for (const child of node.children ?? []) visit(child, childParent, meta?.kind === 'state' ? depth + 1 : depth);
  }
  visit(result, undefined, 0);

  return layout;
}
