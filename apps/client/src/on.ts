/**
 * Subscribing returns the function that unsubscribes, as in socket.io-client's own `on.ts`, so every
 * binding can be undone with one call and none is left dangling on a socket or peer connection that
 * outlives it.
 */

export type Unsubscribe = () => void;

// socket.io's emitter types its listeners per event with `any[]` for untyped ones; this helper only
// passes the listener through, so it takes the same shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- socket.io's own listener type
type Listener = (...args: any[]) => void;

interface EventEmitterLike {
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
}

/** Adds `listener` to a socket.io-style emitter. */
export function on(emitter: EventEmitterLike, event: string, listener: Listener): Unsubscribe {
  emitter.on(event, listener);
  return () => {
    emitter.off(event, listener);
  };
}

/** Adds a catch-all `listener` to a socket.io socket; it receives the event name, then its arguments. */
export function onAny(socket: { onAny(listener: Listener): unknown; offAny(listener: Listener): unknown }, listener: Listener): Unsubscribe {
  socket.onAny(listener);
  return () => {
    socket.offAny(listener);
  };
}

/** Adds `listener` to a DOM-style event target (a peer connection, `window`). */
export function listen(target: EventTarget, event: string, listener: (event: Event) => void): Unsubscribe {
  target.addEventListener(event, listener);
  return () => target.removeEventListener(event, listener);
}

/** One unsubscribe for many, run in reverse order of subscription. */
export function all(subscriptions: Unsubscribe[]): Unsubscribe {
  return () => {
    for (const unsubscribe of subscriptions.splice(0).reverse()) unsubscribe();
  };
}
