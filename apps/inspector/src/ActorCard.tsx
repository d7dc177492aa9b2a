import { useId } from 'react';
import { actorName, type ActorMoment } from './timeline.ts';
import { Statechart } from './Statechart.tsx';

/**
 * One actor of the request: its state as text and its chart. The data attributes are what browser
 * tests read (`[data-kind="peerConnection"][data-side="visitor"]`, then `data-state`); keep them stable.
 */
export function ActorCard({ actor, selected, onSelect }: { actor: ActorMoment; selected: boolean; onSelect: () => void }) {
  const titleId = useId();
  const name = actorName(actor);
  return (
    <article
      className={`actor-card side-${actor.side}${selected ? ' selected' : ''}${actor.known ? '' : ' unknown'}`}
      aria-labelledby={titleId}
      data-actor-id={actor.actorId}
      data-kind={actor.kind}
      data-side={actor.side}
      data-state={actor.label}
      // The whole card is a target for the mouse; the button in its title is the same for the keyboard.
      onClick={onSelect}
    >
      <h3 id={titleId}>
        <button type="button" className="card-select" aria-pressed={selected}>
          <span className="kind">{actor.kind}</span> <span className={`side-tag side-${actor.side}`}>{actor.side}</span>
        </button>
      </h3>
      <p className="state-label">{actor.known ? <code>{actor.label}</code> : <span className="subtle">No state yet at this moment</span>}</p>
      <Statechart
        kind={actor.kind}
        state={actor.known ? actor.state : null}
        size="fit"
        description={`${name} statechart${actor.known ? `, in ${actor.label}` : ''}`}
      />
    </article>
  );
}
