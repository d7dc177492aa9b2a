import { useEffect, useMemo, useState } from 'react';
import { chartOf, isChartedKind, type Chart } from './charts.ts';
import { activeStateIds } from './stateValue.ts';
import { renderSvg } from './svg.ts';

type ChartLoad = { kind: string; chart: Chart | null; error: boolean };

function useChart(kind: string): ChartLoad {
  const [load, setLoad] = useState<ChartLoad>({ kind, chart: null, error: false });
  useEffect(() => {
    if (!isChartedKind(kind)) return;
    let current = true;
    chartOf(kind).then(
      (chart) => current && setLoad({ kind, chart, error: false }),
      (cause: unknown) => {
        console.warn(`[callchart] laying out the ${kind} chart failed`, cause);
        if (current) setLoad({ kind, chart: null, error: true });
      },
    );
    return () => {
      current = false;
    };
  }, [kind]);
  if (!isChartedKind(kind)) return { kind, chart: null, error: true };
  return load.kind === kind ? load : { kind, chart: null, error: false };
}

/**
 * A machine's chart with the states of `state` highlighted. `fit` scales it to its container's width
 * (the SVG keeps its viewBox); `natural` draws it at its own size and lets the container scroll.
 */
export function Statechart({ kind, state, description, size }: { kind: string; state: unknown; description: string; size: 'fit' | 'natural' }) {
  const { chart, error } = useChart(kind);
  const svg = useMemo(() => (chart ? renderSvg(chart.layout, activeStateIds(chart.definition, state)) : null), [chart, state]);

  if (error) return <p className="chart-placeholder">No chart for this machine.</p>;
  if (svg === null) return <p className="chart-placeholder">Drawing the chart…</p>;
  return (
    <div
      className={`statechart ${size}`}
      role="img"
      aria-label={description}
      // renderSvg escapes every piece of machine text it writes, and the states come from our own
      // machine definitions, not from the wire; the server's values only choose which ids are active.
      dangerouslySetInnerHTML={{ __html: svg }}
    />
  );
}
