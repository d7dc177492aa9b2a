import { describe, expect, it } from 'vitest';
import { layoutStatechart, type StatechartLayout } from './layout.ts';
import { machineDefinition, toStatechartGraph } from './statechartGraph.ts';
import { escapeXml, renderSvg } from './svg.ts';
import { fixtureMachine } from './__fixtures__/nestedParallel.ts';

const tiny: StatechartLayout = {
  width: 300,
  height: 200,
  states: [
    { kind: 'state', id: 'm', label: 'm', type: 'compound', parallelRegion: false, initial: false, depth: 0, x: 0, y: 0, width: 300, height: 200 },
    { kind: 'state', id: 'm.<a>', label: '<a> & "b"', type: 'atomic', parallelRegion: false, initial: true, depth: 1, parentId: 'm', x: 10, y: 40, width: 100, height: 40, description: 'x < y & z' },
    { kind: 'state', id: 'm.b', label: 'b', type: 'atomic', parallelRegion: true, initial: false, depth: 1, parentId: 'm', x: 150, y: 40, width: 100, height: 40 },
  ],
  initialMarkers: [],
  edges: [
    { id: 'e', kind: 'transition', source: 'm.<a>', target: 'm.b', label: 'go [a<b && c>d]', points: [{ x: 110, y: 60 }, { x: 150, y: 60 }], labelBox: { x: 100, y: 44, width: 50, height: 16 } },
  ],
};

function activeIds(svg: string): string[] {
  return [...svg.matchAll(/<g class="([^"]*)" data-state-id="([^"]*)"/g)].filter(([, cls]) => cls!.split(' ').includes('active')).map(([, , id]) => id!);
}

describe('renderSvg', () => {
  it('escapes names, descriptions and labels', () => {
    expect(escapeXml(`<&>"'`)).toBe('&lt;&amp;&gt;&quot;&apos;');
    const svg = renderSvg(tiny, []);
    expect(svg).toContain('&lt;a&gt; &amp; &quot;b&quot;</text>');
    expect(svg).toContain('<title>x &lt; y &amp; z</title>');
    expect(svg).toContain('go [a&lt;b &amp;&amp; c&gt;d]</text>');
    expect(svg).toContain('data-state-id="m.&lt;a&gt;"');
    expect(svg).not.toMatch(/<a>|& |<b|c>d/);
  });

  it('draws rounded states, dashed parallel regions and arrowed edges', () => {
    const svg = renderSvg(tiny, []);
    expect(svg.match(/<rect [^>]*rx="8"/g)).toHaveLength(3);
    expect(svg).toContain('<g class="state atomic region" data-state-id="m.b">');
    expect(svg).toMatch(/\.state\.region > rect \{[^}]*stroke-dasharray/);
    expect(svg).toContain('<path d="M110 60 L150 60" marker-end="url(#arrow)"/>');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  });

  it('marks exactly the active states of a laid-out machine', async () => {
    const layout = await layoutStatechart(toStatechartGraph(machineDefinition(fixtureMachine)));
    const active = ['fx', 'fx.running', 'fx.running.audio', 'fx.running.audio.off', 'fx.running.video', 'fx.running.video.on'];
    expect(activeIds(renderSvg(layout, active)).sort()).toEqual([...active].sort());
    expect(activeIds(renderSvg(layout, []))).toEqual([]);
    expect(activeIds(renderSvg(layout, ['fx.unknown']))).toEqual([]);
    const svg = renderSvg(layout, active);
    expect(svg.match(/<g class="state /g)).toHaveLength(layout.states.length);
    expect(svg.match(/<g class="edge /g)).toHaveLength(layout.edges.length);
    expect(svg.match(/class="initial-marker"/g)).toHaveLength(3);
  });
});
