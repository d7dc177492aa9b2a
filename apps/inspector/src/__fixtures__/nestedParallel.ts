import { setup } from 'xstate';

/** Small but covers nesting, a parallel state, guards, delays, always, a targetless and a two-target transition. */
export const fixtureMachine = setup({
  guards: { isReady: () => true },
  delays: { grace: 100 },
}).createMachine({
  id: 'fx',
  initial: 'idle',
  on: { reset: { target: '.idle' } },
  states: {
    idle: {
      description: 'Waiting <first> & last',
      on: { start: { target: 'running', guard: 'isReady' }, ping: {} },
    },
    running: {
      type: 'parallel',
      on: { both: { target: ['.audio.off', '.video.off'] } },
      states: {
        audio: {
          initial: 'on',
          states: {
            on: { on: { mute: 'off' } },
            off: { after: { grace: 'on' } },
          },
        },
        video: {
          initial: 'on',
          states: {
            on: { always: { guard: 'isReady', target: 'off' } },
            off: {},
          },
        },
      },
    },
    done: { type: 'final' },
  },
});
