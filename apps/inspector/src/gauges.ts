/**
 * A cluster's gauges as the inspector shows them: per node, and summed. One process sends no nodes, and
 * the page then shows none.
 */
import type { NodeGauges } from '@callchart/machines';

export type GaugeTotals = Omit<NodeGauges, 'node'>;

/** The cluster's sums of every node's gauges. */
export function gaugeTotals(nodes: readonly NodeGauges[]): GaugeTotals {
  const totals: GaugeTotals = { requests: 0, calls: 0, queued: 0, sockets: 0 };
  for (const node of nodes) {
    totals.requests += node.requests;
    totals.calls += node.calls;
    totals.queued += node.queued;
    totals.sockets += node.sockets;
  }
  return totals;
}
