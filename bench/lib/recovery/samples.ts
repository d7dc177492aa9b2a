/**
 * What the in-page recorders hand back, and the readings taken from it. Every timestamp is the page's
 * `Date.now()`, the same clock the bench process uses, so page and relay events line up.
 */

/**
 * Script text both in-page recorders include: `keep`, which holds a list to its last entries, and
 * `inbound`, a stats report's inbound RTP bytes as a `ByteSample`. Plain text, never a serialized
 * function: the bench runs under tsx, whose name-keeping helpers do not exist in the page.
 */
export const SAMPLING_SCRIPT = `
const KEEP = 6000;
const keep = (list, entry) => { list.push(entry); if (list.length > KEEP) list.splice(0, list.length - KEEP); };
// Stamped with the report's own time (epoch ms): on a loaded machine getStats() may resolve long after
// the moment it describes.
function inbound(report) {
  const totals = { at: 0, video: 0, audio: 0 };
  report.forEach((stat) => {
    if (stat.type === 'inbound-rtp' && (stat.kind === 'video' || stat.kind === 'audio')) {
      totals[stat.kind] += stat.bytesReceived || 0;
      totals.at = Math.max(totals.at, Math.round(stat.timestamp));
    }
  });
  if (!totals.at) totals.at = Date.now();
  return totals;
}
`;

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
