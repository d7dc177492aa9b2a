import { useId, useState } from 'react';
import { JsonTree } from './JsonTree.tsx';
import { Statechart } from './Statechart.tsx';
import { actorName, formatClock, type ActorMoment } from './timeline.ts';

/** The selected actor at full size: its chart, the event that put it in its state, and its context. */
export function ActorDetail({ actor, contextStored }: { actor: ActorMoment; contextStored: boolean }) {
  const [natural, setNatural] = useState(false);
  const headingId = useId();
  const name = actorName(actor);
  return (
    <section className="panel actor-detail" aria-labelledby={headingId}>
      <div className="panel-head">
        <h2 id={headingId}>
          {name}
          {actor.known && (
            <>
              {' '}
              <code className="state-label">{actor.label}</code>
            </>
          )}
        </h2>
        <button type="button" className="button small" aria-pressed={natural} onClick={() => setNatural((value) => !value)}>
          {natural ? 'Fit to width' : 'Actual size'}
        </button>
      </div>
      <Statechart
        kind={actor.kind}
        state={actor.known ? actor.state : null}
        size={natural ? 'natural' : 'fit'}
        description={`${name} statechart, large${actor.known ? `, in ${actor.label}` : ''}`}
      />
      <div className="detail-columns">
        <div>
          <h3>Event</h3>
          {actor.entry ? (
            <>
              <p>
                <code>{actor.entry.event.type}</code> at <time dateTime={new Date(actor.entry.at).toISOString()}>{formatClock(actor.entry.at)}</time>
              </p>
              <JsonTree value={actor.entry.event} label={`The event that put ${name} in its state`} openDepth={0} />
            </>
          ) : (
            <p className="subtle">{actor.known ? 'Its state was sent with the replay, without the event that led there.' : 'Nothing yet at this moment.'}</p>
          )}
        </div>
        <div>
          <h3>Context</h3>
          {!contextStored ? (
            <p className="subtle">Not stored: a finished call keeps its transitions, not its machines’ contexts.</p>
          ) : actor.known && actor.context !== null ? (
            <JsonTree value={actor.context} label={`Context of ${name}`} />
          ) : (
            <p className="subtle">No context at this moment.</p>
          )}
        </div>
      </div>
    </section>
  );
}
