import { describe, expect, it } from 'vitest';
import { chartOf, isChartedKind } from './charts.ts';
import type { ActorKind } from '@callchart/machines';

const kinds: ActorKind[] = ['routing', 'callSession', 'visitorCall', 'agent', 'peerConnection', 'signaling'];

describe('chartOf', () => {
  it('lays out every kind once and hands the same chart to every caller', async () => {
    for (const kind of kinds) {
      const first = chartOf(kind);
      expect(chartOf(kind)).toBe(first);
      const chart = await first;
      expect(chart.definition.id).toBe(kind);
      expect(chart.layout.width).toBeGreaterThan(0);
      expect(chart.layout.states.map((state) => state.id)).toContain(kind);
    }
  });

  it('knows only the kinds it has machines for', () => {
    expect(kinds.every(isChartedKind)).toBe(true);
    expect(isChartedKind('toString')).toBe(false);
    expect(isChartedKind('teleporter')).toBe(false);
  });
});
