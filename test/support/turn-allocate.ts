/**
 * The smallest TURN client that asks a real TURN server for a relay (RFC 5766 Allocate over UDP, with
 * RFC 5389 long-term credentials): the first request is challenged with a realm and a nonce, the second
 * carries the username and a MESSAGE-INTEGRITY keyed with the password. What the server answers is the
 * verdict on those credentials.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';

const MAGIC_COOKIE = 0x2112a442;
const ALLOCATE_REQUEST = 0x0003;
const ALLOCATE_SUCCESS = 0x0103;
const ALLOCATE_ERROR = 0x0113;
const ATTR = { username: 0x0006, integrity: 0x0008, errorCode: 0x0009, realm: 0x0014, nonce: 0x0015, requestedTransport: 0x0019 } as const;
const UDP = 17;
const INTEGRITY_BYTES = 20;
const ANSWER_MS = 2_000;

export type AllocateOutcome = { ok: true } | { ok: false; code: number; reason: string };

function attribute(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

function message(type: number, transactionId: Buffer, attributes: Buffer[]): Buffer {
  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(body.length, 2);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  return Buffer.concat([header, body]);
}

/** Appends MESSAGE-INTEGRITY: an HMAC-SHA1 over the message with its length already counting the attribute. */
function withIntegrity(unsigned: Buffer, key: Buffer): Buffer {
  const counted = Buffer.from(unsigned);
  counted.writeUInt16BE(unsigned.length - 20 + 4 + INTEGRITY_BYTES, 2);
  const mac = createHmac('sha1', key).update(counted).digest();
  return Buffer.concat([counted, attribute(ATTR.integrity, mac)]);
}

function attributes(packet: Buffer): Map<number, Buffer> {
  const found = new Map<number, Buffer>();
  for (let at = 20; at + 4 <= packet.length; ) {
    const type = packet.readUInt16BE(at);
    const length = packet.readUInt16BE(at + 2);
    found.set(type, packet.subarray(at + 4, at + 4 + length));
    at += 4 + length + ((4 - (length % 4)) % 4);
  }
  return found;
}

function outcome(packet: Buffer): AllocateOutcome {
  const type = packet.readUInt16BE(0);
  if (type === ALLOCATE_SUCCESS) return { ok: true };
  if (type !== ALLOCATE_ERROR) throw new Error(`not an Allocate answer: type 0x${type.toString(16)}`);
  const error = attributes(packet).get(ATTR.errorCode);
  if (!error) throw new Error('an Allocate error without an ERROR-CODE');
  return { ok: false, code: (error[2]! & 0x07) * 100 + error[3]!, reason: error.subarray(4).toString('utf8') };
}

/** Asks the TURN server at `address:port` for a UDP relay with these credentials. */
export async function allocate(address: string, port: number, { username, credential }: { username: string; credential: string }): Promise<AllocateOutcome> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const exchange = (request: Buffer, transactionId: Buffer) =>
    new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the TURN server at ${address}:${String(port)}`)), ANSWER_MS);
      const onMessage = (packet: Buffer) => {
        if (packet.length < 20 || !packet.subarray(8, 20).equals(transactionId)) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(packet);
      };
      socket.on('message', onMessage);
      socket.send(request, port, address);
    });
  const transport = attribute(ATTR.requestedTransport, Buffer.from([UDP, 0, 0, 0]));
  try {
    const firstId = randomBytes(12);
    const challenge = await exchange(message(ALLOCATE_REQUEST, firstId, [transport]), firstId);
    const first = outcome(challenge);
    const given = attributes(challenge);
    const realm = given.get(ATTR.realm);
    const nonce = given.get(ATTR.nonce);
    // Anything but the usual challenge is already the verdict.
    if (first.ok || first.code !== 401 || !realm || !nonce) return first;
    const key = createHash('md5').update(`${username}:${realm.toString('utf8')}:${credential}`).digest();
    const secondId = randomBytes(12);
    const signed = withIntegrity(
      message(ALLOCATE_REQUEST, secondId, [transport, attribute(ATTR.username, Buffer.from(username)), attribute(ATTR.realm, realm), attribute(ATTR.nonce, nonce)]),
      key,
    );
    return outcome(await exchange(signed, secondId));
  } finally {
    socket.close();
  }
}
