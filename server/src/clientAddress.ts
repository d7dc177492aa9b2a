/**
 * Where a request or a socket comes from, for the limits and the log. Behind a load balancer every
 * connection's peer is the balancer, so one per-address limit would be shared by every visitor; the
 * balancer names the client in X-Forwarded-For. That header is believed only from the proxies the
 * operator lists (TRUST_PROXY), walking it from the nearest hop: anyone else can write whatever they like
 * into it, and a client behind a trusted proxy can still prepend entries of its own, which stay unread.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import proxyaddr from 'proxy-addr';

/** Whether the hop at `address` (`hop` steps from this server) is a proxy whose X-Forwarded-For is believed. */
export type ProxyTrust = (address: string, hop: number) => boolean;

export const trustNoProxy: ProxyTrust = () => false;

/** The trust of a TRUST_PROXY list; an empty list trusts nobody. Throws a TypeError for an entry that is no address. */
export function proxyTrust(proxies: readonly string[]): ProxyTrust {
  return proxies.length === 0 ? trustNoProxy : proxyaddr.compile([...proxies]);
}

/** What a request or a handshake carries of where it came from. */
export interface Peer {
  headers: IncomingHttpHeaders;
  socket: { remoteAddress?: string | undefined };
}

/** The client's address: the peer's own, unless the peer is a trusted proxy that forwarded it. */
export function clientAddress(peer: Peer, trust: ProxyTrust): string {
  const direct = peer.socket.remoteAddress;
  if (direct === undefined) return 'unknown';
  if (trust === trustNoProxy) return direct;
  // proxy-addr reads only these two fields of the request it is typed to take.
  const address = proxyaddr(peer as IncomingMessage, trust);
  // A trusted proxy that forwarded something other than an address: counted as the proxy itself, since a
  // made-up key would be a bucket of its own for whoever made it up.
  return isIP(address) === 0 ? direct : address;
}

/** As `clientAddress`, for a Socket.IO handshake (`socket.handshake`). */
export function handshakeAddress(handshake: { address: string; headers: IncomingHttpHeaders }, trust: ProxyTrust): string {
  return clientAddress({ headers: handshake.headers, socket: { remoteAddress: handshake.address } }, trust);
}
