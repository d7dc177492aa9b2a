/**
 * The measurement: a visitor asks for a call, and every agent rung for it lets the ring go, by rejecting
 * it or by leaving it unanswered, so the request moves from agent to agent. Each move gives one sample,
 * from the trigger to the next agent's `agent.ring`:
 *
 * - reject: from the moment the rung agent's socket sends `agent.reject` to the arrival of the next ring,
 *   both seen in this process (one clock);
 * - ring-no-answer: from the ring's deadline (`expiresAt`, the server's clock; same machine) to the arrival
 *   of the next ring, so the timer's own lateness counts as part of the move, and so does the server's work
 *   between reading its clock for the deadline and sending the ring (XState arms a delayed event after the
 *   macrostep, and the step's messages leave only once its writes are committed).
 *
 * Only a ring whose deadline the server computed from a clock reading (the request, or a reject, carries
 * `at`) is left to time out. A ring that follows a timeout gets `expiresAt` = the previous deadline plus
 * RING_TIMEOUT_MS (the timer event carries no time, so routing.machine.ts `startTimer` falls back to
 * `context.deadlineAt`), while its real timer starts when the previous one actually fired: measured from
 * that announced deadline, every hop would also count the lateness of all the hops before it. Such rings
 * are rejected instead, which re-anchors the next deadline; in the ring-no-answer mode those rejects give
 * no sample.
 *
 * A request moves at most MAX_REASSIGNMENTS times and then ends; the next request starts afresh.
 *
 * The server may go on working after it has sent the ring (the ring leaves once its step is committed, and
 * telling every other request about the agents follows), and a trigger arriving meanwhile would wait. So after each
 * ring a probe (`session.resume` with a token that is not one: no state, no log line, one round trip) asks
 * when the server is free again; that round trip is reported as the work a move leaves behind, and the next
 * trigger is only sent after it, so every sample starts from a server at rest.
 */
import type { Socket } from 'socket.io-client';
import type { Ring, RingBoard } from './ringBoard.ts';

export type Trigger = 'reject' | 'timeout';

export interface CascadeResult {
  trigger: Trigger;
  /** Trigger to next ring, ms, in the order taken. */
  samples: number[];
  requests: number;
  /** Rejects the server refused, e.g. because the ring had already timed out: their samples are left out. */
  refused: number;
  /** From each next ring's arrival to the answer of a probe sent right then, ms: the server's work left after the ring. */
  busyAfterMs: number[];
}

const PROBE = { resumeToken: 'not.a.resume-token' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function ask(socket: Socket, event: string, payload: unknown): Promise<{ ok: boolean; requestId?: string; error?: { code: string } }> {
  return (await socket.timeout(10_000).emitWithAck(event, payload)) as { ok: boolean; requestId?: string; error?: { code: string } };
}

export async function cascade(
  options: { trigger: Trigger; samples: number; pool: string; ringTimeoutMs: number },
  fleet: { agents: Socket[]; visitor: Socket; board: RingBoard },
): Promise<CascadeResult> {
  const { agents, visitor, board } = fleet;
  const samples: number[] = [];
  let requests = 0;
  let refused = 0;
  const busyAfter: number[] = [];
  const probe = async (ring: Ring) => {
    const reply = await ask(visitor, 'session.resume', PROBE);
    if (!reply.ok) throw new Error(`probe refused: ${reply.error?.code}`);
    busyAfter.push(performance.now() - ring.at);
  };
  const waitMs = options.ringTimeoutMs + 10_000;
  while (samples.length < options.samples) {
    requests++;
    const reply = await ask(visitor, 'visitor.request', { pool: options.pool });
    if (!reply.ok || !reply.requestId) throw new Error(`visitor.request refused: ${reply.error?.code}`);
    const requestId = reply.requestId;
    let ring = await board.next(requestId, waitMs);
    // Whether this ring's expiresAt was computed from a clock reading (see the module comment).
    let anchored = true;
    while (ring && samples.length < options.samples) {
      let next: Ring | null;
      if (options.trigger === 'reject' || !anchored) {
        // A person's reject comes at no particular moment: a varying pause, so it cannot fall into step with
        // any periodic work.
        await sleep(1 + Math.random() * 4);
        const sentAt = performance.now();
        const [ack, following] = await Promise.all([ask(agents[ring.agent]!, 'agent.reject', { requestId }), board.next(requestId, waitMs)]);
        next = following;
        if (!ack.ok) refused++;
        else if (next && options.trigger === 'reject') samples.push(next.at - sentAt);
        anchored = true;
      } else {
        next = await board.next(requestId, waitMs);
        if (next) samples.push(performance.timeOrigin + next.at - ring.expiresAt);
        anchored = false;
      }
      if (next) await probe(next);
      ring = next;
    }
    if (ring) {
      await ask(visitor, 'visitor.cancel', { requestId });
      await board.untilEnded(requestId, waitMs);
    }
  }
  const rounded = (values: number[]) => values.map((ms) => Math.round(ms * 1000) / 1000);
  return { trigger: options.trigger, samples: rounded(samples), requests, refused, busyAfterMs: rounded(busyAfter) };
}
