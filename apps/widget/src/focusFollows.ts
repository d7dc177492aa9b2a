/**
 * Focus in the widget follows the call: when a state puts a new primary control on screen, focus moves
 * to it. The widget sits on someone else's page, so it takes focus only while the visitor is using it:
 * never on load, and never from an element of the host page the visitor has moved to.
 */
import { useEffect, useRef, type RefObject } from 'react';
import type { VisitorControl } from '@callchart/machines';

// What a visitor most likely wants next when the view offers it: end what runs, else start again.
const primaryOrder: readonly VisitorControl[] = ['hangup', 'cancel', 'retry', 'call'];

export function primaryControl(controls: readonly VisitorControl[]): VisitorControl | null {
  return primaryOrder.find((control) => controls.includes(control)) ?? null;
}

/**
 * True while the visitor's focus is in `panel`, and still true when the control they used was replaced
 * by the next state's (focus then falls to nothing, not elsewhere). False once focus goes anywhere else.
 */
export function useAttention(panel: RefObject<HTMLElement | null>): RefObject<boolean> {
  const attention = useRef(false);
  useEffect(() => {
    const element = panel.current;
    if (!element) return;
    const enter = () => {
      attention.current = true;
    };
    const leave = (event: FocusEvent) => {
      if (event.relatedTarget instanceof Node && !element.contains(event.relatedTarget)) attention.current = false;
    };
    element.addEventListener('focusin', enter);
    // A click focuses nothing in some browsers, yet it is the visitor using the widget.
    element.addEventListener('pointerdown', enter);
    element.addEventListener('focusout', leave);
    return () => {
      element.removeEventListener('focusin', enter);
      element.removeEventListener('pointerdown', enter);
      element.removeEventListener('focusout', leave);
    };
  }, [panel]);
  return attention;
}

/** Nothing on the page holds focus, or the widget does: moving it then takes it from no one. */
function focusIsFree(element: HTMLElement): boolean {
  const active = document.activeElement;
  const root = element.getRootNode();
  const widget = root instanceof ShadowRoot ? root.host : element;
  return active === null || active === document.body || active === widget || widget.contains(active);
}

/** Focuses `target` when it appears and whenever `key` (the primary control) changes, if the visitor is using the widget. */
export function useFocusFollows(key: string | null, target: RefObject<HTMLElement | null>, attention: RefObject<boolean>): void {
  useEffect(() => {
    const element = target.current;
    if (key === null || !element || !attention.current || !focusIsFree(element)) return;
    element.focus();
  }, [key, target, attention]);
}
