import { describe, expect, it } from 'vitest';
import config from '../../../stately.config.ts';
import { loadMachine } from '../../../scripts/machine-docs.ts';
import { layoutStatechart, type Rect, type StatechartLayout } from './layout.ts';
import { machineDefinition, toStatechartGraph } from './statechartGraph.ts';
import { fixtureMachine } from './__fixtures__/nestedParallel.ts';

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function inside(inner: Rect, outer: Rect): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
}

function expectWellFormed(layout: StatechartLayout): void {
  const byId = new Map(layout.states.map((box) => [box.id, box]));
  const shapes = [...layout.states, ...layout.initialMarkers];
  for (const shape of shapes) {
    expect(shape.width).toBeGreaterThan(0);
    expect(shape.height).toBeGreaterThan(0);
    if (shape.parentId === undefined) continue;
    expect(inside(shape, byId.get(shape.parentId)!), `${shape.id} inside ${shape.parentId}`).toBe(true);
    for (const sibling of shapes) {
      if (sibling !== shape && sibling.parentId === shape.parentId) {
        expect(overlaps(shape, sibling), `${shape.id} overlaps ${sibling.id}`).toBe(false);
      }
    }
  }
  for (const box of layout.states) expect(inside(box, { x: 0, y: 0, width: layout.width, height: layout.height })).toBe(true);
  for (const edge of layout.edges) {
    expect(edge.points.length, edge.id).toBeGreaterThanOrEqual(2);
    if (edge.kind === 'transition') expect(edge.labelBox, edge.id).toBeDefined();
  }
}

describe('layoutStatechart', () => {
  it('places regions of a parallel state side by side, children inside parents, siblings apart', async () => {
    const layout = await layoutStatechart(toStatechartGraph(machineDefinition(fixtureMachine)));
    expectWellFormed(layout);
    const audio = layout.states.find((box) => box.id === 'fx.running.audio')!;
    const video = layout.states.find((box) => box.id === 'fx.running.video')!;
    expect(audio.x + audio.width <= video.x || video.x + video.width <= audio.x).toBe(true);
    expect(layout.states.map((box) => [box.id, box.parentId, box.depth])).toEqual([
      ['fx', undefined, 0],
      ['fx.idle', 'fx', 1],
      ['fx.running', 'fx', 1],
      ['fx.running.audio', 'fx.running', 2],
      ['fx.running.audio.on', 'fx.running.audio', 3],
      ['fx.running.audio.off', 'fx.running.audio', 3],
      ['fx.running.video', 'fx.running', 2],
      ['fx.running.video.on', 'fx.running.video', 3],
      ['fx.running.video.off', 'fx.running.video', 3],
      ['fx.done', 'fx', 1],
    ]);
    expect(layout.edges.filter((edge) => edge.kind === 'transition')).toHaveLength(8);
    expect(layout.initialMarkers.map((marker) => marker.parentId)).toEqual(['fx.running.audio', 'fx.running.video', 'fx']);
  });

  it('anchors edges on the boxes they connect', async () => {
    const layout = await layoutStatechart(toStatechartGraph(machineDefinition(fixtureMachine)));
    const byId = new Map(layout.states.map((box) => [box.id, box]));
    const onBorder = (p: { x: number; y: number }, box: Rect) =>
      p.x >= box.x - 1 && p.x <= box.x + box.width + 1 && p.y >= box.y - 1 && p.y <= box.y + box.height + 1;
    const mute = layout.edges.find((edge) => edge.label === 'mute')!;
    expect(onBorder(mute.points[0]!, byId.get('fx.running.audio.on')!)).toBe(true);
    expect(onBorder(mute.points.at(-1)!, byId.get('fx.running.audio.off')!)).toBe(true);
  });

  it('is reproducible and leaves its input untouched', async () => {
    const graph = toStatechartGraph(machineDefinition(fixtureMachine));
    const before = structuredClone(graph);
    const first = await layoutStatechart(graph);
    expect(graph).toEqual(before);
    expect(await layoutStatechart(graph)).toEqual(first);
  });

  it.each(config.machines.map((entry) => [entry.name, entry] as const))('lays out %s without overlaps', async (_name, entry) => {
    const machine = await loadMachine(entry);
    const graph = toStatechartGraph(machineDefinition(machine));
    const layout = await layoutStatechart(graph);
    expectWellFormed(layout);
    for (const parallel of layout.states.filter((box) => box.type === 'parallel')) {
      const regions = layout.states.filter((box) => box.parentId === parallel.id).sort((a, b) => a.x - b.x);
      expect(regions.every((region) => region.parallelRegion)).toBe(true);
      regions.slice(1).forEach((region, i) => expect(region.x).toBeGreaterThanOrEqual(regions[i]!.x + regions[i]!.width));
    }
  });
});
