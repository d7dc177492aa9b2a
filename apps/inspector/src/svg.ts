/**
 * Draws a laid-out statechart as an SVG document. Plain string building, so the same output can be
 * produced on the server, in the browser and in tests; every piece of machine text is escaped because
 * descriptions and names end up inside markup.
 */
import type { EdgePath, StatechartLayout, StateBox } from './layout.ts';
import { HEADER_HEIGHT } from './statechartGraph.ts';

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (char) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[char]};`);
}

function num(value: number): string {
  return String(Math.round(value * 10) / 10);
}

const style = `
.state rect { fill: #fff; stroke: #4b5563; stroke-width: 1.5; }
.state.compound > rect, .state.parallel > rect { fill: #f9fafb; }
.state.region > rect { stroke-dasharray: 6 4; }
.state.final > rect { stroke-width: 3; }
.state.active > rect { fill: #dbeafe; stroke: #2563eb; stroke-width: 2.5; }
.state text { font: 12px sans-serif; fill: #111827; }
.initial-marker { fill: #111827; }
.edge path { fill: none; stroke: #6b7280; stroke-width: 1.2; }
.edge text { font: 11px sans-serif; fill: #374151; }
`;

function stateClass(box: StateBox, active: ReadonlySet<string>): string {
  const classes = ['state', box.type];
  if (box.parallelRegion) classes.push('region');
  if (box.initial) classes.push('initial');
  if (active.has(box.id)) classes.push('active');
  return classes.join(' ');
}

function renderState(box: StateBox, active: ReadonlySet<string>): string {
  const leaf = box.type === 'atomic' || box.type === 'final' || box.type === 'history';
  // A leaf centres its name; a container puts it in the header above its children.
  const textX = leaf ? box.x + box.width / 2 : box.x + 10;
  const textY = leaf ? box.y + box.height / 2 + 4 : box.y + HEADER_HEIGHT / 2 + 6;
  const anchor = leaf ? 'middle' : 'start';
  const name = box.type === 'parallel' ? `${box.label} ∥` : box.label;
  const title = box.description ? `<title>${escapeXml(box.description)}</title>` : '';
  return (
    `<g class="${stateClass(box, active)}" data-state-id="${escapeXml(box.id)}">${title}` +
    `<rect x="${num(box.x)}" y="${num(box.y)}" width="${num(box.width)}" height="${num(box.height)}" rx="8" ry="8"/>` +
    `<text x="${num(textX)}" y="${num(textY)}" text-anchor="${anchor}">${escapeXml(name)}</text></g>`
  );
}

function renderEdge(edge: EdgePath): string {
  if (edge.points.length < 2) return '';
  const [first, ...rest] = edge.points;
  const d = `M${num(first!.x)} ${num(first!.y)}` + rest.map((p) => ` L${num(p.x)} ${num(p.y)}`).join('');
  const label =
    edge.label && edge.labelBox
      ? `<text x="${num(edge.labelBox.x + edge.labelBox.width / 2)}" y="${num(edge.labelBox.y + edge.labelBox.height - 4)}" text-anchor="middle">${escapeXml(edge.label)}</text>`
      : '';
  return (
    `<g class="edge ${edge.kind}" data-source="${escapeXml(edge.source)}" data-target="${escapeXml(edge.target)}">` +
    `<path d="${d}" marker-end="url(#arrow)"/>${label}</g>`
  );
}

/** The whole diagram; states whose ids are in `activeStateIds` get the class `active`. */
export function renderSvg(layout: StatechartLayout, activeStateIds: readonly string[]): string {
  const active = new Set(activeStateIds);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" width="${num(layout.width)}" height="${num(layout.height)}" viewBox="0 0 ${num(layout.width)} ${num(layout.height)}">`,
    `<defs><style>${style}</style>` +
      '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">' +
      '<path d="M0 0 L10 5 L0 10 z" fill="#6b7280"/></marker></defs>',
    ...layout.states.map((box) => renderState(box, active)),
    ...layout.initialMarkers.map(
      (marker) =>
        `<circle class="initial-marker" cx="${num(marker.x + marker.width / 2)}" cy="${num(marker.y + marker.height / 2)}" r="${num(marker.width / 2)}"/>`,
    ),
    // Edges last, so that arrows into nested states are not hidden behind their containers.
    ...layout.edges.map(renderEdge),
    '</svg>',
  ];
  return parts.join('\n') + '\n';
}
