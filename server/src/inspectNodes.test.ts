import { describe, expect, it } from 'vitest';
import { NodeReport, PeerReports } from './inspectNodes.ts';

const gauges = (requests: number, calls = 0, sockets = 1) => ({ requests, calls, queued: 0, sockets });

function request(requestId: string, createdAt: number) {
  return { requestId, pool: 'support', visitorName: `Visitor ${requestId}`, agentName: null, createdAt, state: 'ringing', call: null };
}

function report(node: string, ...requests: ReturnType<typeof request>[]): NodeReport {
  return { node, requests, gauges: gauges(requests.length) };
}

describe('PeerReports', () => {
  it("merges this node's fresh report with the others': each request once, under its node, oldest first, and every node's gauges", () => {
    const peers = new PeerReports('node-2');
    peers.replaceAll([report('node-3', request('req-c', 30)), report('node-1', request('req-a', 10)), report('node-2', request('stale', 5))]);
    const merged = peers.merged(report('node-2', request('req-b', 20)));
    expect(merged.requests.map((r) => [r.requestId, r.node])).toEqual([
      ['req-a', 'node-1'],
      ['req-b', 'node-2'],
      ['req-c', 'node-3'],
    ]);
    expect(merged.nodes).toEqual([
      { node: 'node-1', ...gauges(1) },
      { node: 'node-2', ...gauges(1) },
      { node: 'node-3', ...gauges(1) },
    ]);
  });

  it('moves a request to the node that listed it last, and says so', () => {
    const peers = new PeerReports('node-3');
    peers.replaceAll([report('node-1', request('req-a', 10), request('req-b', 20)), report('node-2')]);
    // node-1 died; node-2 took req-a over.
    expect(peers.apply(report('node-2', request('req-a', 10)))).toBe(true);
    const merged = peers.merged(report('node-3'));
    expect(merged.requests.map((r) => [r.requestId, r.node])).toEqual([
      ['req-a', 'node-2'],
      ['req-b', 'node-1'],
    ]);
    // Once it ends on node-2, the dead node's old copy does not bring it back.
    expect(peers.apply(report('node-2'))).toBe(false);
    expect(peers.merged(report('node-3')).requests.map((r) => r.requestId)).toEqual(['req-b']);
    expect(peers.lists('req-a')).toBe(false);
    expect(peers.lists('req-b')).toBe(true);
  });

  it('forgets a node that did not answer a gather, and prefers its own report over a copy', () => {
    const peers = new PeerReports('node-1');
    peers.replaceAll([report('node-2', request('req-x', 1)), report('node-3')]);
    peers.replaceAll([report('node-3', request('req-x', 1))]);
    expect(peers.nodes()).toEqual(['node-3']);
    const merged = peers.merged(report('node-1', request('req-x', 1)));
    expect(merged.requests).toEqual([expect.objectContaining({ requestId: 'req-x', node: 'node-1' })]);
    expect(merged.nodes.map((n) => n.node)).toEqual(['node-1', 'node-3']);
    // Its own report never lands among the peers'.
    expect(peers.apply(report('node-1'))).toBe(false);
    expect(peers.nodes()).toEqual(['node-3']);
  });

  it('takes only well-formed reports', () => {
    expect(NodeReport.safeParse(report('node-1', request('req-a', 1))).success).toBe(true);
    expect(NodeReport.safeParse({ node: 'node-1', requests: [], gauges: { requests: -1, calls: 0, queued: 0, sockets: 0 } }).success).toBe(false);
    expect(NodeReport.safeParse({ node: '', requests: [], gauges: gauges(0) }).success).toBe(false);
    expect(NodeReport.safeParse({ node: 'node-1', requests: [{ requestId: 'req-a' }], gauges: gauges(1) }).success).toBe(false);
  });
});
