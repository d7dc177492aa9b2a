import { Fragment, useEffect, useRef } from 'react';
import { stateLabel } from './stateValue.ts';
import { eventSummary, formatClock } from './timeline.ts';
import type { TimelineEntry } from '@callchart/machines';
import type { HistoryEntry } from './timeline.ts';

/** Dotted names and state labels, allowed to wrap after a dot, a comma or a parenthesis only. */
function Dotted({ text }: { text: string }) {
  return (
    <code>
      {text.split(/(?<=[.,(])/).map((part, index) => (
        <Fragment key={index}>
          {index > 0 && <wbr />}
          {part}
        </Fragment>
      ))}
    </code>
  );
}

/**
 * Every entry of the request across its actors, oldest first. Picking a row shows the request as of that
 * entry; while nothing is picked the table follows the newest entry down.
 */
export function TimelineTable({
  entries,
  cursor,
  onPick,
  showFrom,
}: {
  entries: readonly (TimelineEntry | HistoryEntry)[];
  cursor: number | null;
  onPick: (index: number) => void;
  /** Stored history knows the state each transition left; live entries only the one they reached. */
  showFrom: boolean;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const picked = useRef<HTMLTableRowElement>(null);

  useEffect(() => {
    if (cursor === null) {
      const element = scroller.current;
      if (element) element.scrollTop = element.scrollHeight;
    } else {
      picked.current?.scrollIntoView({ block: 'nearest' });
    }
  }, [cursor, entries.length]);

  if (entries.length === 0) return <p className="subtle">No entries yet.</p>;
  return (
    <div className="timeline-scroll" ref={scroller}>
      <table className="timeline">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Event</th>
            <th scope="col">{showFrom ? 'From → to' : 'State'}</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry, index) => {
            const current = index === cursor;
            const to = entry.state === null ? '—' : stateLabel(entry.state);
            const from = 'fromState' in entry && entry.fromState !== null ? stateLabel(entry.fromState) : null;
            return (
              <tr
                key={index}
                ref={current ? picked : undefined}
                className={`${current ? 'current' : ''}${cursor !== null && index > cursor ? ' later' : ''}`}
                aria-current={current ? 'step' : undefined}
                data-entry-index={index}
                onClick={() => onPick(index)}
              >
                <td>
                  {/* The row takes mouse clicks anywhere; this button is the same for the keyboard. */}
                  <button type="button" className="row-pick" aria-label={`Show the request as of ${formatClock(entry.at)}, ${entry.event.type}`}>
                    {formatClock(entry.at)}
                  </button>
                </td>
                <td>
                  {entry.kind} <span className={`side-tag side-${entry.side}`}>{entry.side}</span>
                </td>
                <td>
                  <Dotted text={eventSummary(entry.event)} />
                </td>
                <td>
                  <Dotted text={showFrom && from !== null ? `${from} → ${to}` : to} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
