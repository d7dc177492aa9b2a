/**
 * Which machine modules exist and where their Stately-importable JSON and diagrams go.
 * Read by `npm run machines`; the generated files under `outDir` are committed and checked by a test.
 */
export interface MachineEntry {
  name: string;
  module: string;
  export: string;
  summary: string;
}

export default {
  outDir: 'docs/machines',
  machines: [
    {
      name: 'peerConnection',
      module: './machines/src/peerConnection.machine.ts',
      export: 'peerConnectionMachine',
      summary: 'One per RTCPeerConnection: ICE restart on connection failure, at most three attempts.',
    },
    {
      name: 'signaling',
      module: './machines/src/signaling.machine.ts',
      export: 'signalingMachine',
      summary: 'One per client socket: reconnection with jittered backoff, session resume and the outbox.',
    },
    {
      name: 'visitorCall',
      module: './machines/src/visitorCall.machine.ts',
      export: 'visitorCallMachine',
      summary: "The visitor's view of a call, from the first click to its end.",
    },
    {
      name: 'agent',
      module: './machines/src/agent.machine.ts',
      export: 'agentMachine',
      summary: "The agent's presence, rings and calls.",
    },
    {
      name: 'routing',
      module: './machines/src/routing.machine.ts',
      export: 'routingMachine',
      summary: 'Server side, one per visitor request: ringing agents in turn and reassigning the visitor.',
    },
    {
      name: 'callSession',
      module: './machines/src/callSession.machine.ts',
      export: 'callSessionMachine',
      summary: 'Server side, one per live call: pausing and resuming when a leg drops out, and telemetry.',
    },
    {
      name: 'connection',
      module: './machines/src/connection.machine.ts',
      export: 'connectionMachine',
      summary: "Server side, one per person: their open sockets, the resume window once the last goes, away and logout.",
    },
  ] satisfies MachineEntry[],
};
