/**
 * Signaling payloads of realistic size: an SDP offer or answer of about 4 KB (one audio and one video
 * section, as a browser writes them) and ICE candidates of about 100 bytes. Each carries its send time in a
 * field the protocol's schemas accept unchanged, so the receiving leg can tell the latency without a side table:
 * the session version of the SDP's `o=` line and the foundation of a candidate.
 */

/** Microseconds on this process's monotonic clock; sender and receiver must share the process. */
export const nowUs = () => Math.round(performance.now() * 1000);

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) % 256).toString(16).toUpperCase().padStart(2, '0')).join(':');

/** What every media section says of its transport: both are bundled on the one ICE and DTLS session. */
function transport(setup: 'actpass' | 'active', mid: number): string[] {
  return [
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:EsAw',
    'a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y',
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    `a=setup:${setup}`,
    `a=mid:${mid}`,
  ];
}

function media(setup: 'actpass' | 'active'): string {
  const audio = [
    'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
    ...transport(setup, 0),
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendrecv',
    'a=msid:3a4f9d2e-1c7b-4b8e-9f0a-6d5c2b1e8f7a 8c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=rtpmap:63 red/48000/2',
    'a=fmtp:63 111/111',
    'a=rtpmap:9 G722/8000',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:13 CN/8000',
    'a=rtpmap:110 telephone-event/48000',
    'a=rtpmap:126 telephone-event/8000',
    'a=ssrc:1001446351 cname:q2Xh1nG3v9KZ8mLw',
    'a=ssrc:1001446351 msid:3a4f9d2e-1c7b-4b8e-9f0a-6d5c2b1e8f7a 8c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f',
  ];
  const videoCodecs: [number, string, number][] = [
    [96, 'VP8/90000', 97],
    [98, 'VP9/90000', 99],
    [100, 'H264/90000', 101],
    [102, 'H264/90000', 103],
    [108, 'H264/90000', 109],
    [112, 'H264/90000', 113],
    [104, 'AV1/90000', 105],
  ];
  const video = [
    `m=video 9 UDP/TLS/RTP/SAVPF ${videoCodecs.flatMap(([pt, , rtx]) => [pt, rtx]).join(' ')} 106 107`,
    ...transport(setup, 1),
    'a=extmap:14 urn:ietf:params:rtp-hdrext:toffset',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:13 urn:3gpp:video-orientation',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendrecv',
    'a=msid:3a4f9d2e-1c7b-4b8e-9f0a-6d5c2b1e8f7a 5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b',
    'a=rtcp-mux',
    'a=rtcp-rsize',
    ...videoCodecs.flatMap(([pt, codec, rtx]) => [
      `a=rtpmap:${pt} ${codec}`,
      `a=rtcp-fb:${pt} goog-remb`,
      `a=rtcp-fb:${pt} transport-cc`,
      `a=rtcp-fb:${pt} ccm fir`,
      `a=rtcp-fb:${pt} nack`,
      `a=rtcp-fb:${pt} nack pli`,
      ...(codec.startsWith('H264') ? [`a=fmtp:${pt} level-asymmetry-allowed=1;packetization-mode=${pt === 100 ? 1 : 0};profile-level-id=42e01f`] : []),
      `a=rtpmap:${rtx} rtx/90000`,
      `a=fmtp:${rtx} apt=${pt}`,
    ]),
    'a=rtpmap:106 red/90000',
    'a=rtpmap:107 ulpfec/90000',
    'a=ssrc-group:FID 2231627014 632943048',
    'a=ssrc:2231627014 cname:q2Xh1nG3v9KZ8mLw',
    'a=ssrc:2231627014 msid:3a4f9d2e-1c7b-4b8e-9f0a-6d5c2b1e8f7a 5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b',
    'a=ssrc:632943048 cname:q2Xh1nG3v9KZ8mLw',
    'a=ssrc:632943048 msid:3a4f9d2e-1c7b-4b8e-9f0a-6d5c2b1e8f7a 5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b',
  ];
  return [...audio, ...video].join('\r\n') + '\r\n';
}

const OFFER_BODY = media('actpass');
const ANSWER_BODY = media('active');
const SESSION_TAIL = ' IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS 3a4f9d2e-1c7b-4b8e-9f0a-6d5c2b1e8f7a\r\n';

export const sdp = (kind: 'offer' | 'answer', stampUs: number) =>
  `v=0\r\no=- 4611731400430051336 ${stampUs}${SESSION_TAIL}${kind === 'offer' ? OFFER_BODY : ANSWER_BODY}`;

export const candidate = (stampUs: number) => ({
  candidate: `candidate:${stampUs} 1 udp 2122260223 192.168.1.23 54400 typ host generation 0 ufrag EsAw network-id 1`,
  sdpMid: '0',
  sdpMLineIndex: 0,
  usernameFragment: 'EsAw',
});

/** The send time a relayed payload carries, or null if it carries none. */
export function stampOf(payload: unknown): number | null {
  const { sdp: text, candidate: ice } = (payload ?? {}) as { sdp?: unknown; candidate?: { candidate?: unknown } };
  if (typeof text === 'string') {
    const start = text.indexOf(' ', text.indexOf('o=- ') + 4) + 1;
    return Number(text.slice(start, text.indexOf(' ', start))) || null;
  }
  if (typeof ice?.candidate === 'string') return Number(ice.candidate.slice('candidate:'.length, ice.candidate.indexOf(' '))) || null;
  return null;
}

export type SignalEvent = 'signal.offer' | 'signal.answer' | 'signal.candidate';

/** One negotiation as a browser pair sends it: offer, answer, then trickled candidates both ways. */
export const EXCHANGE: { event: SignalEvent; from: 'offerer' | 'answerer' }[] = [
  { event: 'signal.offer', from: 'offerer' },
  { event: 'signal.answer', from: 'answerer' },
  ...Array.from({ length: 8 }, (_, i) => ({ event: 'signal.candidate' as const, from: i % 2 === 0 ? ('offerer' as const) : ('answerer' as const) })),
];

export type SignalPayload = { callId: string; sdp: string } | { callId: string; candidate: ReturnType<typeof candidate> };

export function payloadFor(event: SignalEvent, callId: string, stampUs: number): SignalPayload {
  if (event === 'signal.candidate') return { callId, candidate: candidate(stampUs) };
  return { callId, sdp: sdp(event === 'signal.offer' ? 'offer' : 'answer', stampUs) };
}
