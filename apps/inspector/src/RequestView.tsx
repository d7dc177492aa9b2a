import { useId, useMemo, useState, type ReactNode } from 'react';
import { ActorCard } from './ActorCard.tsx';
import { ActorDetail } from './ActorDetail.tsx';
import { TimelineTable } from './TimelineTable.tsx';
import { foldActors, formatClock } from './timeline.ts';
import type { ActorView, TimelineEntry } from '@callchart/machines';
import type { HistoryEntry } from './timeline.ts';

const noActors: readonly ActorView[] = [];

/**
 * A request's actors side by side, the selected one large, and the timeline that drives them: live it
 * shows the present, and picking an entry shows every actor as of that entry until "follow" returns.
 */
export function RequestView({
  heading,
  notice,
  entries,
  baseline = noActors,
  live,
  contextStored,
}: {
  heading: ReactNode;
  notice?: ReactNode;
  entries: readonly (TimelineEntry | HistoryEntry)[];
  baseline?: readonly ActorView[];
  /** Whether entries still arrive: only then is there a "live" to follow. */
  live: boolean;
  contextStored: boolean;
}) {
  // The picked entry itself rather than its index, so that entries dropped from the front of a long
  // live timeline do not move the replay to another moment.
  const [picked, setPicked] = useState<TimelineEntry | null>(null);
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const timelineHeadingId = useId();

  const pickedIndex = picked === null ? -1 : entries.indexOf(picked);
  const cursor = picked === null ? null : Math.max(pickedIndex, 0);
  const actors = useMemo(() => foldActors(entries, cursor === null ? { baseline } : { until: cursor }), [entries, baseline, cursor]);
  const selected = actors.find((actor) => actor.actorId === selectedId) ?? actors[0];
  const last = entries.length - 1;

  const pick = (index: number) => setPicked(entries[Math.min(Math.max(index, 0), last)] ?? null);
  // Stepping back from the present starts at the moment before the newest entry.
  const back = () => pick((cursor ?? last) - 1);
  const forward = () => cursor !== null && pick(cursor + 1);
  const at = cursor === null ? null : entries[cursor];

  return (
    <div className="request-view">
      <header className="request-head">
        {heading}
        {notice}
      </header>

      <div className="request-main">
        {actors.length === 0 ? (
          <p className="subtle">No actor of this request has reported a state yet.</p>
        ) : (
          <div className="actor-grid">
            {actors.map((actor) => (
              <ActorCard key={actor.actorId} actor={actor} selected={actor === selected} onSelect={() => setSelectedId(actor.actorId)} />
            ))}
          </div>
        )}
        {selected && <ActorDetail actor={selected} contextStored={contextStored} />}
      </div>

      <section className="panel timeline-panel" aria-labelledby={timelineHeadingId}>
        <div className="panel-head">
          <h2 id={timelineHeadingId}>Timeline</h2>
          <span className="subtle">{entries.length} entries</span>
        </div>
        <div className="replay-bar" role="group" aria-label="Moment shown">
          <button type="button" className="button small" onClick={back} disabled={entries.length === 0 || cursor === 0}>
            ◀ Step back
          </button>
          <button type="button" className="button small" onClick={forward} disabled={cursor === null || cursor >= last}>
            Step forward ▶
          </button>
          <button type="button" className="button small primary" onClick={() => setPicked(null)} disabled={cursor === null}>
            {live ? 'Follow live' : 'Show the end'}
          </button>
          <p className="replay-position" aria-live="polite">
            {at ? `Replay: entry ${cursor! + 1} of ${entries.length}, at ${formatClock(at.at)}` : live ? 'Following live' : 'Showing the end'}
          </p>
        </div>
        <TimelineTable entries={entries} cursor={cursor} onPick={pick} showFrom={entries.some((entry) => 'fromState' in entry)} />
      </section>
    </div>
  );
}
