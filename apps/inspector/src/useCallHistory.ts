import { useEffect, useRef, useState } from 'react';
import { FeedError, type Feed } from './feed.ts';
import { historyEntries } from './timeline.ts';
import type { StoredHistory } from '@callchart/machines';
import type { HistoryEntry } from './timeline.ts';

export interface CallHistoryView {
  call: StoredHistory['call'] | null;
  entries: HistoryEntry[];
  loading: boolean;
  error: string | null;
}

/** A finished call's stored transitions, asked for once the feed is connected. */
export function useCallHistory(feed: Feed, callId: string, connected: boolean): CallHistoryView {
  const [view, setView] = useState<CallHistoryView & { callId: string }>({ call: null, entries: [], loading: true, error: null, callId });

  // Stored history does not change, so a reconnect does not fetch it again (and keep the replay position).
  const loaded = useRef<{ feed: Feed; callId: string } | null>(null);

  useEffect(() => {
    if (!connected || (loaded.current?.feed === feed && loaded.current.callId === callId)) return;
    let current = true;
    setView({ call: null, entries: [], loading: true, error: null, callId });
    feed.history(callId).then(
      (history) => {
        if (!current) return;
        loaded.current = { feed, callId };
        setView({ call: history.call, entries: historyEntries(history.entries), loading: false, error: null, callId });
      },
      (cause: unknown) => {
        console.warn('[callchart] inspect.history failed', cause);
        const error = cause instanceof FeedError ? cause.message : 'The call’s history could not be loaded.';
        if (current) setView({ call: null, entries: [], loading: false, error, callId });
      },
    );
    return () => {
      current = false;
    };
  }, [feed, callId, connected]);

  return view.callId === callId ? view : { call: null, entries: [], loading: true, error: null };
}
