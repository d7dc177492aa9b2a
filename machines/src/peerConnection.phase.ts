/**
 * The phase of a peerConnection, for whoever needs where it stands rather than what its media watch is
 * doing: the state value with the sampling ticks and the watch's substates folded away, so every kind of
 * `connected` reads `'connected'`, and an attempt reads `{ reconnecting: 'attempting' }`.
 */
export type PeerConnectionPhase = string | { reconnecting: string | { verifying: string } };

export function peerConnectionPhase(value: unknown): PeerConnectionPhase {
  if (typeof value === 'string') return value;
  const top = value as Record<string, unknown>;
  if ('connected' in top) return 'connected';
  const reconnecting = top.reconnecting;
  if (typeof reconnecting === 'string') return { reconnecting };
  const sub = reconnecting as Record<string, unknown>;
  if ('attempting' in sub) return { reconnecting: 'attempting' };
  return { reconnecting: sub as { verifying: string } };
}
