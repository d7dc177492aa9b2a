/**
 * Reconnect backoff policy: a small pure module kept apart from IO, so the signaling machine only
 * decides *when* to call it and tests can check the numbers directly.
 *
 * Machines draw no random numbers of their own and their context must stay serializable, so randomness
 * comes from a seeded PRNG whose whole state is one uint32 that lives in context.
 */

export interface BackoffPolicy {
  initialDelay: number;
  maxDelay: number;
  maxJitter: number;
}

/** Delay before attempt `attempt` (0-based) without jitter: min(initial · 2^n, max). */
export function baseDelay(attempt: number, policy: BackoffPolicy): number {
  const n = Math.max(0, Math.floor(attempt));
  // 2^n overflows to Infinity past n = 1023; once the product passes maxDelay the answer is fixed,
  // so stop doubling early instead of relying on Infinity arithmetic.
  let delay = policy.initialDelay;
  for (let i = 0; i < n && delay < policy.maxDelay; i++) delay *= 2;
  return Math.max(0, Math.min(delay, policy.maxDelay));
}

/** Integer jitter in [0, maxJitter) from a uniform draw in [0, 1). */
export function jitterFrom(random: number, maxJitter: number): number {
  if (!(maxJitter > 0)) return 0;
  return Math.floor(random * maxJitter);
}

/** Full delay for attempt `attempt` (0-based) given a uniform draw in [0, 1). */
export function retryDelay(attempt: number, policy: BackoffPolicy, random: number): number {
  return baseDelay(attempt, policy) + jitterFrom(random, policy.maxJitter);
}

export interface RandomDraw {
  /** Uniform in [0, 1). */
  value: number;
  /** The PRNG state to use for the next draw. */
  state: number;
}

/** Normalises any number (e.g. a seed from `crypto.getRandomValues`) to a PRNG state. */
export function seedRandom(seed: number): number {
  return Number.isFinite(seed) ? Math.trunc(seed) >>> 0 : 0;
}

/**
 * One step of mulberry32: tiny, fast and statistically good enough for spreading reconnect storms;
 * not for anything security-related.
 */
export function nextRandom(state: number): RandomDraw {
  const next = (state + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { value: ((t ^ (t >>> 14)) >>> 0) / 4294967296, state: next };
}
