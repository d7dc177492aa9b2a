/**
 * How the server's machines tell time. They have no clock of their own: every event carries `at` (epoch
 * ms, server clock), and a machine's one running timer is kept in its context (`deadlineAt`, `timerMs`),
 * so that an actor restored from its snapshot can be re-armed to fire at the same deadline.
 */

export interface TimerContext {
  /** When the running timer is due (epoch ms), so a restored actor can re-arm it with the time left. */
  deadlineAt: number | null;
  /** Duration the running timer was (re)armed with. */
  timerMs: number;
  startedAt: number;
}

/**
 * The time of the event being handled. A timer's own event and the start carry no `at`: a timer fires at
 * its deadline, and the start happens when the actor started.
 */
export function eventTime(context: TimerContext, event: { type: string }): number {
  const at = (event as { at?: unknown }).at;
  if (typeof at === 'number') return at;
  return context.deadlineAt ?? context.startedAt;
}

/** The timer armed for `duration` from `at`: the event's time, as the machine tells it (`eventTime` for most). */
export function armedTimer(at: number, duration: number): Pick<TimerContext, 'deadlineAt' | 'timerMs'> {
  return { deadlineAt: at + duration, timerMs: duration };
}

/**
 * The running timer re-armed at `timers.rearm` with the time it had left. A deadline that passed while the
 * timer was not running fires at once; it then counts as having fired at the re-arm.
 */
export function rearmedTimer(context: TimerContext, event: { type: string }): Pick<TimerContext, 'deadlineAt' | 'timerMs'> {
  const at = eventTime(context, event);
  const deadlineAt = Math.max(context.deadlineAt ?? at, at);
  return { deadlineAt, timerMs: deadlineAt - at };
}
