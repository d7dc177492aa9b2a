import { describe, expect, it } from 'vitest';
import { parseInspectorPush } from '@callchart/machines';
import { gaugeTotals } from './gauges.ts';

const parseLiveList = (payload: unknown) => {
  const parsed = parseInspectorPush('inspect.calls', payload);
  return parsed.ok ? parsed.data : null;
};

const request = { requestId: 'req_1', pool: 'support', visitorName: 'Vera', agentName: null, createdAt: 1, state: 'ringing', call: null };

describe('the live list as the inspector reads it', () => {
  it("keeps a cluster's node per request and its nodes' gauges", () => {
    const list = parseLiveList({
      requests: [{ ...request, node: 'node-1.1' }],
      nodes: [{ node: 'node-1.1', requests: 1, calls: 0, queued: 0, sockets: 2 }],
      clientInspection: false,
    });
    expect(list?.requests[0]?.node).toBe('node-1.1');
    expect(list?.nodes).toEqual([{ node: 'node-1.1', requests: 1, calls: 0, queued: 0, sockets: 2 }]);
  });

  it('reads one process’s list, which names no nodes, as before', () => {
    expect(parseLiveList({ requests: [request] })).toEqual({ requests: [request] });
  });

  it('drops a list that is not one', () => {
    expect(parseLiveList({ requests: [{ ...request, node: 7 }] })).toBeNull();
    expect(parseLiveList({ requests: [], nodes: [{ node: 'node-1', requests: -1, calls: 0, queued: 0, sockets: 0 }] })).toBeNull();
    expect(parseLiveList('inspect.calls')).toBeNull();
  });
});

describe('gaugeTotals', () => {
  it("sums every node's gauges", () => {
    expect(
      gaugeTotals([
        { node: 'a', requests: 2, calls: 1, queued: 1, sockets: 5 },
        { node: 'b', requests: 3, calls: 2, queued: 0, sockets: 4 },
      ]),
    ).toEqual({ requests: 5, calls: 3, queued: 1, sockets: 9 });
    expect(gaugeTotals([])).toEqual({ requests: 0, calls: 0, queued: 0, sockets: 0 });
  });
});
