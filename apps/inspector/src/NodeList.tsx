import type { NodeGauges } from '@callchart/machines';
import { gaugeTotals } from './gauges.ts';

const COLUMNS = [
  ['requests', 'Requests'],
  ['calls', 'Calls'],
  ['queued', 'Queued'],
  ['sockets', 'Sockets'],
] as const;

/** A cluster's nodes, each with what it runs and holds, and the cluster's total. */
export function NodeList({ nodes }: { nodes: readonly NodeGauges[] }) {
  const totals = gaugeTotals(nodes);
  return (
    <section className="side-section" aria-labelledby="nodes-heading">
      <h2 id="nodes-heading">
        Nodes <span className="count">{nodes.length}</span>
      </h2>
      <table className="gauges">
        <thead>
          <tr>
            <th scope="col">Node</th>
            {COLUMNS.map(([key, label]) => (
              <th key={key} scope="col">
                {label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {nodes.map((node) => (
            <tr key={node.node} data-node={node.node}>
              <th scope="row">
                <code>{node.node}</code>
              </th>
              {COLUMNS.map(([key]) => (
                <td key={key}>{node[key]}</td>
              ))}
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row">Total</th>
            {COLUMNS.map(([key]) => (
              <td key={key}>{totals[key]}</td>
            ))}
          </tr>
        </tfoot>
      </table>
    </section>
  );
}
