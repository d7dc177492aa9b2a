/**
 * A program that uses the SDK as a published package: test/integration/sdk-package.test.ts copies it into
 * a project outside the repository that installed the packed tarballs, type-checks it there and runs it
 * in Node. A visitor client and an agent client make a whole call through the server, told by the typed
 * `on` events alone; the RTCPeerConnection is @roamhq/wrtc's, with no camera, so the media is the
 * call's data channel. What was heard is printed as one line of JSON.
 */
import { createRequire } from 'node:module';
import {
  createAgentClient,
  createVisitorClient,
  type AgentCallEnd,
  type AgentStatus,
  type RtcEnvironment,
  type Unsubscribe,
  type VisitorCallEnd,
  type VisitorStatus,
} from '@callchart/client';

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const url = setting('CALLCHART_URL');
const wrtc = createRequire(import.meta.url)(setting('WRTC_MODULE')) as { RTCPeerConnection: RtcEnvironment['RTCPeerConnection'] };
const rtc: RtcEnvironment = { RTCPeerConnection: wrtc.RTCPeerConnection };

interface Heard<Status, End> {
  statuses: Status[];
  ended: End[];
  errors: string[];
}
const heard = {
  visitor: { statuses: [], ended: [], errors: [] } as Heard<VisitorStatus, VisitorCallEnd>,
  agent: { statuses: [], ended: [], errors: [] } as Heard<AgentStatus, AgentCallEnd>,
};

// Whatever goes wrong, the test learns how far the call came.
const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ...heard, timedOut: true }));
  process.exit(1);
}, 30_000);

const visitor = createVisitorClient({ url, token: setting('VISITOR_TOKEN'), pool: 'support', rtc });
const agent = createAgentClient({ url, token: setting('AGENT_TOKEN'), rtc });
visitor.on('status', (status) => heard.visitor.statuses.push(status));
visitor.on('ended', (end) => heard.visitor.ended.push(end));
visitor.on('error', (error) => heard.visitor.errors.push(`${error.code}: ${error.message}`));
agent.on('status', (status) => heard.agent.statuses.push(status));
agent.on('ended', (end) => heard.agent.ended.push(end));
agent.on('error', (error) => heard.agent.errors.push(`${error.code}: ${error.message}`));

// @ts-expect-error the events are typed: there is no `ringing` event
visitor.on('ringing', () => {});
// @ts-expect-error and a status listener is given the status, not a stream
visitor.on('status', (stream: MediaStream) => stream);

interface StatusSource<S> {
  readonly status: S;
  on(event: 'status', listener: (status: S) => void): Unsubscribe;
}

/** The first status, now or to come, that `wanted` accepts. */
function reaching<S>(client: StatusSource<S>, wanted: (status: S) => boolean): Promise<S> {
  return new Promise((resolve) => {
    if (wanted(client.status)) return resolve(client.status);
    const stop = client.on('status', (status) => {
      if (!wanted(status)) return;
      stop();
      resolve(status);
    });
  });
}

await Promise.all([reaching<VisitorStatus>(visitor, (s) => s.connection === 'ready'), reaching<AgentStatus>(agent, (s) => s.connection === 'ready')]);
agent.call.send({ type: 'login' });
await reaching<AgentStatus>(agent, (s) => s.state === 'available');
visitor.call.send({ type: 'call.request' });
await reaching<AgentStatus>(agent, (s) => s.state === 'ringing');
agent.call.send({ type: 'accept' });
// Green: the media is proven to flow, and the other person is there.
await Promise.all([reaching<VisitorStatus>(visitor, (s) => s.view.connection === 'green'), reaching<AgentStatus>(agent, (s) => s.view.connection === 'green')]);

const agentHeardTheEnd = new Promise<AgentCallEnd>((resolve) => agent.on('ended', resolve));
visitor.call.send({ type: 'hangup' });
await agentHeardTheEnd;

visitor.stop();
agent.stop();
clearTimeout(deadline);
console.log(JSON.stringify({ ...heard, timedOut: false }));
