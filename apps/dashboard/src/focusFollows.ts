/**
 * Focus on the dashboard follows the agent's state: it moves to the control the agent most likely wants
 * next, so a ring can be answered and a call ended from the keyboard without hunting for the button.
 */
import { useEffect, type RefObject } from 'react';
import type { AgentView } from '@callchart/machines';

export type PrimaryControl = 'available' | 'accept' | 'hangup' | 'dismiss';

export function primaryControl(view: AgentView): PrimaryControl | null {
  if (view.controls.includes('accept')) return 'accept';
  if (view.controls.includes('hangup')) return 'hangup';
  if (view.controls.includes('dismiss')) return 'dismiss';
  // Between calls, whether away or not: Available is the one that lets the next call ring.
  if (view.presence === 'available' || view.presence === 'away') return 'available';
  return null;
}

/** Focuses `target` when it appears and whenever `key` changes; a null key leaves focus alone. */
export function useFocusFollows(key: string | null, target: RefObject<HTMLElement | null>): void {
  useEffect(() => {
    if (key !== null) target.current?.focus();
  }, [key, target]);
}
