import { useEffect, useState } from 'react';
import { openFeed, type Feed, type FeedStatus } from './feed.ts';
import type { LiveRequest, NodeGauges } from '@callchart/machines';

export interface FeedView {
  feed: Feed | null;
  status: FeedStatus;
  /** Null until the server's first list arrives. */
  requests: LiveRequest[] | null;
  /** Whether browsers report their machines; null while not known. */
  clientInspection: boolean | null;
  /** Each node's gauges in a cluster; null from one process. */
  nodes: NodeGauges[] | null;
}

/** One feed per token, for as long as the component lives. */
export function useFeed(token: string): FeedView {
  const [view, setView] = useState<FeedView>({ feed: null, status: { kind: 'connecting' }, requests: null, clientInspection: null, nodes: null });

  useEffect(() => {
    const feed = openFeed(token);
    setView({ feed, status: feed.status, requests: null, clientInspection: null, nodes: null });
    const stops = [
      feed.onStatus((status) => setView((view) => (view.feed === feed ? { ...view, status } : view))),
      feed.onLiveList(({ requests, clientInspection, nodes }) =>
        setView((view) => (view.feed === feed ? { ...view, requests, clientInspection: clientInspection ?? null, nodes: nodes ?? null } : view)),
      ),
    ];
    return () => {
      for (const stop of stops) stop();
      feed.close();
    };
  }, [token]);

  return view;
}
