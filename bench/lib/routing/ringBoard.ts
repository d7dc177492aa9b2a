/**
 * Every `agent.ring` the fleet's sockets receive, by request, stamped on arrival; and the requests that
 * ended. A ring can arrive before the acknowledgement of the request that caused it, so rings are kept
 * until asked for rather than awaited by whoever happens to listen.
 */
export interface Ring {
  /** Index of the rung agent in the fleet. */
  agent: number;
  requestId: string;
  /** The ring's deadline, epoch ms on the server's clock. */
  expiresAt: number;
  /** When it arrived, `performance.now()` of this process. */
  at: number;
}

export class RingBoard {
  private readonly rings = new Map<string, Ring[]>();
  private readonly ended = new Map<string, string>();
  private readonly waiters = new Map<string, (ring: Ring | null) => void>();

  ring(ring: Ring): void {
    const waiter = this.waiters.get(ring.requestId);
    if (waiter) {
      this.waiters.delete(ring.requestId);
      waiter(ring);
      return;
    }
    this.rings.set(ring.requestId, [...(this.rings.get(ring.requestId) ?? []), ring]);
  }

  end(requestId: string, reason: string): void {
    this.ended.set(requestId, reason);
    const waiter = this.waiters.get(requestId);
    this.waiters.delete(requestId);
    waiter?.(null);
  }

  endReason(requestId: string): string | undefined {
    return this.ended.get(requestId);
  }

  /** The request's next ring, or null once the request has ended; rejects after `timeoutMs`. */
  next(requestId: string, timeoutMs: number): Promise<Ring | null> {
    const queued = this.rings.get(requestId);
    if (queued?.length) return Promise.resolve(queued.shift()!);
    if (this.ended.has(requestId)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        reject(new Error(`no ring and no end for ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(requestId, (ring) => {
        clearTimeout(timer);
        resolve(ring);
      });
    });
  }

  /** Resolves once the request has ended (its routing.ended arrived). */
  async untilEnded(requestId: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.ended.has(requestId)) {
      if ((await this.next(requestId, Math.max(1, deadline - performance.now()))) === null) return;
    }
  }
}
