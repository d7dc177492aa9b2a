/**
 * What the in-page recorders hand back, and the readings taken from it. Every timestamp is the page's
 * `Date.now()`, the same clock the bench process uses, so page and relay events line up.
 */

/** Inbound RTP bytes received by one peer connection at one moment. */
export interface ByteSample {
  at: number;
  video: number;
  audio: number;
}

/** One state change of something a page watches (a call actor, its media child, a connectionState). */
export interface StateChange {
  what: string;
  value: string;
  at: number;
}

/**
 * When media was first seen arriving at or after `since`: the first sample whose video and audio bytes
 * both grew over the sample before it. A sampler ticks every ~100 ms, so this is late by at most one tick.
 */
export function firstGrowthAt(samples: readonly ByteSample[], since: number): number | null {
  for (let i = 1; i < samples.length; i++) {
    const now = samples[i]!;
    const before = samples[i - 1]!;
    if (now.at >= since && now.video > before.video && now.audio > before.audio) return now.at;
  }
  return null;
}

/** Media flowing both ways: the later of the sides' first growth; null while any side has none. */
export function flowingAt(sides: readonly (readonly ByteSample[])[], since: number): number | null {
  let latest = -Infinity;
  for (const side of sides) {
    const at = firstGrowthAt(side, since);
    if (at === null) return null;
    latest = Math.max(latest, at);
  }
  return latest;
}

/** The first change of `what` at or after `since` whose value passes `match`. */
export function firstChange(changes: readonly StateChange[], what: string, since: number, match: (value: string) => boolean): StateChange | null {
  return changes.find((change) => change.what === what && change.at >= since && match(change.value)) ?? null;
}
