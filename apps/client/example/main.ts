/**
 * A visitor's video call without the widget and without a framework: a call button, the call's status,
 * the agent's video and a hang-up button, on the public API of `@callchart/client` alone. Which controls
 * show and what the status says come from the client's status, which its machines decide; the page keeps
 * no state of its own.
 */
import { createVisitorClient, type VisitorClient, type VisitorEndReason, type VisitorStatus } from '@callchart/client';

/** The callchart server: `?server=` in this page's address, else a local one. */
const server = new URLSearchParams(location.search).get('server') ?? 'http://127.0.0.1:3000';

function element<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
}

const statusLine = element<HTMLParagraphElement>('#status');
const remoteVideo = element<HTMLVideoElement>('#remote');
const callButton = element<HTMLButtonElement>('#call');
const hangupButton = element<HTMLButtonElement>('#hangup');

// This page's own words; the machines say which applies.
const callWords: Record<Exclude<VisitorStatus['state'], 'ended'>, string> = {
  idle: 'Talk to our team face to face.',
  waiting: 'Finding an agent…',
  connecting: 'Connecting the call…',
  inCall: 'You are in a call.',
};
const endWords: Record<VisitorEndReason, string> = {
  hangup: 'You ended the call.',
  cancelled: 'You cancelled the call.',
  'agent-hangup': 'The agent ended the call.',
  'media-failed': 'The call was lost and could not be reconnected.',
  'reconnect-timeout': 'The connection could not be restored in time.',
  'connect-failed': 'The call could not be connected.',
  'no-agents': 'No agent is free right now. Please try again later.',
  'reassign-limit': 'No agent could take the call. Please try again later.',
  error: 'The call ended because of an error.',
};
const connectionWords: Partial<Record<VisitorStatus['connection'], string>> = {
  connecting: 'Connecting to the service…',
  reconnecting: 'Connection lost, reconnecting…',
  offline: 'You are offline; the call goes on when your network is back.',
  disconnected: 'Disconnected from the service.',
  unauthorized: 'Your session has expired. Reload the page to start a new one.',
};

function statusText(client: VisitorClient, status: VisitorStatus): string {
  const connection = connectionWords[status.connection];
  if (connection) return connection;
  if (status.state !== 'ended') return callWords[status.state];
  const { endReason } = client.call.getSnapshot().context;
  return endReason ? endWords[endReason] : callWords.idle;
}

function render(client: VisitorClient, status: VisitorStatus): void {
  const { controls, showVideo } = status.view;
  statusLine.textContent = statusText(client, status);
  callButton.hidden = !controls.includes('call') && !controls.includes('retry');
  callButton.disabled = status.connection !== 'ready';
  hangupButton.hidden = !controls.includes('hangup') && !controls.includes('cancel');
  hangupButton.textContent = controls.includes('cancel') ? 'Cancel' : 'Hang up';
  remoteVideo.hidden = !showVideo;
}

async function visitorToken(): Promise<string> {
  const response = await fetch(`${server}/api/visitor-session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Example visitor' }),
  });
  if (!response.ok) throw new Error(`POST /api/visitor-session answered ${response.status}`);
  const { token } = (await response.json()) as { token: string };
  return token;
}

async function main(): Promise<void> {
  const client = createVisitorClient({
    url: server,
    token: await visitorToken(),
    pool: 'support',
    rtc: {
      RTCPeerConnection: window.RTCPeerConnection,
      getUserMedia: (constraints) => navigator.mediaDevices.getUserMedia(constraints),
    },
  });
  render(client, client.status);
  client.on('status', (status) => render(client, status));
  client.on('remoteStream', (stream) => {
    remoteVideo.srcObject = stream;
  });
  client.on('ended', ({ reason, callId }) => console.info(`[example] call ${callId ?? '(none)'} ended: ${reason}`));
  client.on('error', (error) => console.warn(`[example] ${error.code}: ${error.message}`, error.details));

  callButton.addEventListener('click', () => client.call.send({ type: 'call.request' }));
  hangupButton.addEventListener('click', () => {
    client.call.send({ type: client.status.view.controls.includes('cancel') ? 'call.cancel' : 'hangup' });
  });
  // Leaving the page hangs up: stop() alone would leave the server holding the call for a reconnection.
  window.addEventListener('pagehide', () => {
    client.call.send({ type: 'hangup' });
    client.stop();
  });
}

main().catch((error: unknown) => {
  statusLine.textContent = 'Video calls are not available right now.';
  console.error('[example]', error);
});
