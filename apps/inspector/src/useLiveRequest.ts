import { useEffect, useState } from 'react';
import type { Feed } from './feed.ts';
import { appendEntry, replayEntries } from './timeline.ts';
import type { ActorView, TimelineEntry } from '@callchart/machines';

export interface LiveRequestView {
  entries: TimelineEntry[];
  /** The actors' views as of the latest replay. */
  actors: ActorView[];
  error: string | null;
}

const empty: LiveRequestView = { entries: [], actors: [], error: null };

/**
 * A live request's timeline: the server's replay, then each entry as it happens. The subscription is
 * renewed on every connect, because the server forgets it with the socket.
 */
export function useLiveRequest(feed: Feed, requestId: string, connected: boolean): LiveRequestView {
  // Tagged with its request, so a switch to another one shows nothing stale for a render.
  const [view, setView] = useState<LiveRequestView & { requestId: string }>({ ...empty, requestId });

  useEffect(() => {
    setView({ ...empty, requestId });
    const update = (change: (view: LiveRequestView) => LiveRequestView) =>
      setView((view) => (view.requestId === requestId ? { ...change(view), requestId } : view));
    const stops = [
      feed.onReplay((replay) => {
        if (replay.requestId !== requestId) return;
        update((view) => {
          // The page may hold more than the server's bounded timeline; what came before the replay stays.
          const entries = replayEntries(replay.entries);
          const first = entries[0];
          const earlier = first ? view.entries.filter((entry) => entry.at < first.at) : view.entries;
          return { entries: [...earlier, ...entries], actors: replay.actors, error: null };
        });
      }),
      feed.onEntry((entry) => {
        if (entry.requestId === requestId) update((view) => ({ ...view, entries: appendEntry(view.entries, entry) }));
      }),
    ];
    return () => {
      for (const stop of stops) stop();
    };
  }, [feed, requestId]);

  useEffect(() => {
    if (!connected) return;
    feed.subscribe(requestId).catch((cause: unknown) => {
      console.warn('[callchart] inspect.subscribe failed', cause);
      setView((view) => (view.requestId === requestId ? { ...view, error: 'The request’s timeline could not be loaded.' } : view));
    });
    return () => feed.unsubscribe(requestId);
  }, [feed, requestId, connected]);

  return view.requestId === requestId ? view : empty;
}
