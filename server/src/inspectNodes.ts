/**
 * The inspector's view of a cluster: what each node last said it runs (its live requests and its gauges),
 * merged into one list in which each request appears once, under the node that runs it.
 *
 * A node's report is a snapshot of its own memory, so two can disagree for a moment while a request moves:
 * the report that listed a request last is the one that is right (the node that took it over lists it the
 * moment it has it), and an older report's copy is dropped. A node that died says nothing more; it drops out
 * when the reports are next gathered, since only the nodes that answer are kept.
 */
import { LiveRequest, NodeGauges as NodeGaugesOf } from '@callchart/machines';
import { z } from 'zod/mini';

/** What one node counts of itself; the node it is of is the report's. */
export const NodeGauges = z.omit(NodeGaugesOf, { node: true });
export type NodeGauges = z.infer<typeof NodeGauges>;

/** What one node says it runs; the nodes send these to each other through the fan-out. */
export const NodeReport = z.object({
  node: z.string().check(z.minLength(1), z.maxLength(64)),
  requests: z.array(LiveRequest),
  gauges: NodeGauges,
});
export type NodeReport = z.infer<typeof NodeReport>;

export type ListedRequest = LiveRequest & { node: string };
export type { NodeGaugesOf };

/** The inspector's list in a cluster: every node's requests, each with its node, and every node's gauges. */
export interface ClusterLiveList {
  requests: ListedRequest[];
  nodes: NodeGaugesOf[];
  clientInspection?: boolean;
}

/** What the other nodes last reported, as one node keeps it. */
export class PeerReports {
  private readonly reports = new Map<string, NodeReport>();

  constructor(readonly self: string) {}

  /** The nodes whose reports are kept, this one left out. */
  nodes(): string[] {
    return [...this.reports.keys()];
  }

  /**
   * What a gather brought back: the nodes that answered are the cluster now, so one that did not (it died,
   * or left) is forgotten.
   */
  replaceAll(reports: readonly NodeReport[]): void {
    this.reports.clear();
    for (const report of reports) if (report.node !== this.self) this.reports.set(report.node, report);
  }

  /**
   * One node's latest report. A request it lists that another node's older report still holds has moved
   * to it; true when that happened, since the node it left may be gone and its gauges with it.
   */
  apply(report: NodeReport): boolean {
    if (report.node === this.self) return false;
    this.reports.set(report.node, report);
    const listed = new Set(report.requests.map((request) => request.requestId));
    let moved = false;
    for (const [node, other] of this.reports) {
      if (node === report.node || !other.requests.some((request) => listed.has(request.requestId))) continue;
      this.reports.set(node, { ...other, requests: other.requests.filter((request) => !listed.has(request.requestId)) });
      moved = true;
    }
    return moved;
  }

  /** Whether the peers' last reports list the request: it is live on one of them, as far as this node knows. */
  lists(requestId: string): boolean {
    for (const report of this.reports.values()) if (report.requests.some((request) => request.requestId === requestId)) return true;
    return false;
  }

  /**
   * The cluster's list with this node's own report, which is read fresh and so wins over a peer's copy of
   * the same request. Requests oldest first; nodes by name.
   */
  merged(own: NodeReport): Omit<ClusterLiveList, 'clientInspection'> {
    const reports = [own, ...[...this.reports.values()].filter((report) => report.node !== own.node).sort((a, b) => a.node.localeCompare(b.node))];
    const seen = new Set<string>();
    const requests: ListedRequest[] = [];
    for (const report of reports) {
      for (const request of report.requests) {
        if (seen.has(request.requestId)) continue;
        seen.add(request.requestId);
        requests.push({ ...request, node: report.node });
      }
    }
    requests.sort((a, b) => a.createdAt - b.createdAt || a.requestId.localeCompare(b.requestId));
    const nodes = reports.map((report) => ({ node: report.node, ...report.gauges })).sort((a, b) => a.node.localeCompare(b.node));
    return { requests, nodes };
  }
}
