import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { openStore, StaleFenceError, type Store, type StoreWrites } from '../store.ts';
import { Journals, StoredOutboxMessage, type Courier, type OutboxMessage, type SnapshotWrite } from './journal.ts';

/** A courier that keeps what it is given, and how many commits had landed when it was. */
class Recorder implements Courier {
  readonly sent: { message: OutboxMessage; landed: number }[] = [];
  constructor(private readonly landed: () => number = () => 0) {}
  deliver(message: OutboxMessage): void {
    this.sent.push({ message, landed: this.landed() });
  }
}

/** The real store, counting the commits that have landed. */
function counting(store: Store): { store: Store; landed: () => number; begun: () => number } {
  let begun = 0;
  let landed = 0;
  return {
    store: {
      ...store,
      commit: async (fill, fence) => {
        begun++;
        await store.commit(fill, fence);
        landed++;
      },
    },
    landed: () => landed,
    begun: () => begun,
  };
}

function logLines(): { stream: Writable; lines: () => { msg: string; level: number }[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as { msg: string; level: number }),
  };
}

/** The real SQLite store, except that its next `failures` commits fail: a stand-in for a database that is restarting. */
function failingCommits(store: Store, failures: { left: number; error: () => Error }): Store {
  return {
    ...store,
    commit: async (fill, fence) => {
      if (failures.left > 0) {
        failures.left--;
        throw failures.error();
      }
      await store.commit(fill, fence);
    },
  };
}

const request = { id: 'req-1', visitorId: 'v-1', visitorName: 'Vera', pool: 'support', state: 'searching', createdAt: 1 };
const createRequest = (writes: StoreWrites) => writes.requests.create(request);

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'callchart-journal-'));
  store = await openStore({ databasePath: path.join(dir, 'store.db') });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A tree's journal whose snapshot is `state.value`, saved under routing:req-1. */
function treeJournal(journals: Journals, state: { value: string; done?: boolean }, onStale?: (error: StaleFenceError) => void) {
  const snapshot = (): SnapshotWrite =>
    state.done
      ? { delete: 'routing:req-1' }
      : { save: { actorId: 'routing:req-1', kind: 'routing', requestId: 'req-1', callId: null, snapshot: { value: state.value }, updatedAt: 2 } };
  return journals.open({ snapshot, what: { requestId: 'req-1' }, ...(onStale ? { onStale } : {}) });
}

describe('a tree journal', () => {
  it('sends a step’s messages only once its writes and its snapshot, with those messages as its outbox, are committed', async () => {
    const commits = counting(store);
    const courier = new Recorder(commits.landed);
    const journals = new Journals(commits.store, courier, createLogger('silent'));
    const journal = treeJournal(journals, { value: 'ringing' });
    journal.write(createRequest);
    const ring = journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    // Nothing goes out while the step is being committed.
    expect(courier.sent).toEqual([]);
    await journals.settled();
    expect(courier.sent).toEqual([{ message: ring, landed: 1 }]);
    expect(ring.payload).toEqual({ requestId: 'req-1', visitorName: 'Vera', expiresAt: 10, eid: ring.eid });
    expect(ring.eid).toMatch(/^[0-9a-f-]{36}$/);
    const row = await store.snapshots.get('routing:req-1');
    expect(row).toMatchObject({ snapshot: { value: 'ringing' }, outbox: [ring] });
    expect(await store.requests.get('req-1')).toMatchObject({ state: 'searching' });
  });

  it('lands the steps sealed while a commit is out as one commit with the tree as it stands, and sends them in order', async () => {
    const commits = counting(store);
    const courier = new Recorder(commits.landed);
    const journals = new Journals(commits.store, courier, createLogger('silent'));
    const state = { value: 'searching' };
    const journal = treeJournal(journals, state);
    journal.write(createRequest);
    const first = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'searching' });
    journal.seal();
    state.value = 'ringing';
    const second = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'ringing' });
    journal.seal();
    state.value = 'queued';
    const third = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'queued' });
    journal.write((writes) => writes.requests.update('req-1', { state: 'queued' }));
    journal.seal();
    await journals.settled();
    expect(courier.sent.map((s) => s.message)).toEqual([first, second, third]);
    // Sealed before the first commit began, all three share it.
    expect(commits.begun()).toBe(1);
    expect(courier.sent.map((s) => s.landed)).toEqual([1, 1, 1]);
    expect(await store.snapshots.get('routing:req-1')).toMatchObject({ snapshot: { value: 'queued' }, outbox: [first, second, third] });
    expect(await store.requests.get('req-1')).toMatchObject({ state: 'queued' });

    // A step sealed while a commit is out waits for it, and goes in the next.
    const fourth = journal.emit('visitor:v-1', 'routing.ended', { requestId: 'req-1', reason: 'cancelled' });
    journal.seal();
    await Promise.resolve();
    const fifth = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'searching' });
    journal.seal();
    await journals.settled();
    expect(courier.sent.map((s) => s.message)).toEqual([first, second, third, fourth, fifth]);
    expect(commits.begun()).toBe(3);
    expect(courier.sent.map((s) => s.landed)).toEqual([1, 1, 1, 2, 3]);
    expect((await store.snapshots.get('routing:req-1'))?.outbox).toEqual([fifth]);
  });

  it('deletes the snapshot of a finished tree with its last step', async () => {
    const journals = new Journals(store, new Recorder(), createLogger('silent'));
    const state = { value: 'ringing', done: false };
    const journal = treeJournal(journals, state);
    journal.write(createRequest);
    journal.seal();
    await journals.settled();
    expect(await store.snapshots.get('routing:req-1')).toBeDefined();
    state.done = true;
    journal.write((writes) => writes.requests.update('req-1', { endedAt: 5, endReason: 'cancelled' }));
    journal.seal();
    await journals.settled();
    expect(await store.snapshots.get('routing:req-1')).toBeUndefined();
    expect(await store.requests.get('req-1')).toMatchObject({ endedAt: 5, endReason: 'cancelled' });
  });

  it('writes nothing for a step that changed nothing and wrote nothing', async () => {
    const commits = counting(store);
    const journals = new Journals(commits.store, new Recorder(), createLogger('silent'));
    const journal = treeJournal(journals, { value: 'ringing' });
    journal.seal(false);
    await journals.settled();
    expect(commits.begun()).toBe(0);
  });

  it('retries a commit the store fails, logging each failure, and sends the step only once it has landed', async () => {
    const log = logLines();
    const failures = { left: 3, error: () => new Error('connection refused') };
    const courier = new Recorder();
    const journals = new Journals(failingCommits(store, failures), courier, createLogger('info', log.stream));
    const journal = treeJournal(journals, { value: 'ringing' });
    journal.write(createRequest);
    const ring = journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(courier.sent).toEqual([]);
    expect(await store.requests.get('req-1')).toBeUndefined();
    await journals.settled();
    expect(failures.left).toBe(0);
    expect(courier.sent.map((s) => s.message)).toEqual([ring]);
    expect(await store.snapshots.get('routing:req-1')).toMatchObject({ outbox: [ring] });
    const messages = log.lines().map((line) => line.msg);
    expect(messages.filter((msg) => msg === 'store commit failed; retrying')).toHaveLength(3);
    expect(messages).toContain('store commit landed after retries');
  });

  it('stops a tree the store refuses as stale: nothing of it is sent or written again', async () => {
    const log = logLines();
    const failures = { left: 1, error: () => new StaleFenceError('req-1', 3, 4) };
    const courier = new Recorder();
    const journals = new Journals(failingCommits(store, failures), courier, createLogger('info', log.stream));
    const stale: StaleFenceError[] = [];
    const journal = treeJournal(journals, { value: 'ringing' }, (error) => stale.push(error));
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    await journals.settled();
    expect(stale).toHaveLength(1);
    expect(stale[0]).toBeInstanceOf(StaleFenceError);
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ringCancelled', { requestId: 'req-1' });
    journal.seal();
    await journals.settled();
    expect(courier.sent).toEqual([]);
    expect(await store.requests.get('req-1')).toBeUndefined();
    expect(log.lines().map((line) => line.msg)).toContain('store refused the tree as stale; it stops here');
  });

  it('gives up a failing commit once the process is stopping, so a shutdown is not held by a dead store', async () => {
    const log = logLines();
    const failures = { left: 1_000, error: () => new Error('connection refused') };
    const courier = new Recorder();
    const journals = new Journals(failingCommits(store, failures), courier, createLogger('info', log.stream));
    const journal = treeJournal(journals, { value: 'ringing' });
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    await new Promise((resolve) => setTimeout(resolve, 100));
    journals.stop();
    await journals.settled();
    expect(courier.sent).toEqual([]);
    expect(log.lines().map((line) => line.msg)).toContain('store commit failed while shutting down; the step was not persisted');
  });

  it('keeps the snapshot a stopped tree had when its last step was sealed', async () => {
    const journals = new Journals(store, new Recorder(), createLogger('silent'));
    const state = { value: 'ringing', done: false };
    const journal = treeJournal(journals, state);
    journal.write(createRequest);
    journal.seal();
    journal.freeze();
    // What the tree would say once stopped must not reach the store.
    state.done = true;
    await journals.settled();
    expect(await store.snapshots.get('routing:req-1')).toMatchObject({ snapshot: { value: 'ringing' } });
  });

  it('runs what waits for delivery after the messages sealed before it, and before those sealed after', async () => {
    const order: string[] = [];
    const courier: Courier = {
      deliver: (message) => {
        order.push(message.kind === 'emit' ? message.event : message.kind);
      },
    };
    const journals = new Journals(store, courier, createLogger('silent'));
    const journal = treeJournal(journals, { value: 'ringing' });
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    journal.afterDelivery(() => order.push('waiter'));
    await journals.sent();
    expect(order).toEqual(['agent.ring', 'waiter']);
    journal.emit('agent:ada', 'agent.ringCancelled', { requestId: 'req-1' });
    journal.leaveCall('call-1');
    journal.seal();
    await journals.settled();
    expect(order).toEqual(['agent.ring', 'waiter', 'agent.ringCancelled', 'leaveCall']);
  });
});

describe('a journal of writes alone', () => {
  it('commits its writes in the order they were made', async () => {
    const journals = new Journals(store, new Recorder(), createLogger('silent'));
    const journal = journals.open();
    journal.write((writes) => writes.settings.set('presence.ada', 'away'));
    journal.seal();
    journal.write((writes) => writes.settings.set('presence.ada', 'available'));
    journal.seal();
    journal.write((writes) => writes.settings.set('presence.ada', 'away'));
    journal.seal();
    await journals.settled();
    expect(await store.settings.get('presence.ada')).toBe('away');
    expect(await store.snapshots.all()).toEqual([]);
  });
});

describe('a tree journal in a cluster', () => {
  const snapshotOf = (state: { value: string }) => (): SnapshotWrite => ({
    save: { actorId: 'routing:req-1', kind: 'routing', requestId: 'req-1', callId: null, snapshot: { value: state.value }, updatedAt: 2 },
  });

  it("commits under its fence, and a newer owner's fence refuses its next commit: nothing of it lands or is sent", async () => {
    const courier = new Recorder();
    const journals = new Journals(store, courier, createLogger('silent'));
    const stale: StaleFenceError[] = [];
    const state = { value: 'searching' };
    const old = journals.open({ snapshot: snapshotOf(state), fence: { requestId: 'req-1', token: 7 }, onStale: (error) => stale.push(error) });
    old.write(createRequest);
    old.seal();
    await journals.settled();
    expect(await store.requests.get('req-1')).toMatchObject({ state: 'searching' });

    // Another node takes the request over: its first commit raises the fence.
    await store.commit(() => {}, { requestId: 'req-1', token: 9 });
    state.value = 'ringing';
    old.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    old.write((writes) => writes.requests.update('req-1', { state: 'ringing' }));
    old.seal();
    await journals.settled();
    expect(stale.map((error) => [error.token, error.newest])).toEqual([[7, 9]]);
    expect(courier.sent).toEqual([]);
    expect(await store.requests.get('req-1')).toMatchObject({ state: 'searching' });
    expect(await store.snapshots.get('routing:req-1')).toMatchObject({ snapshot: { value: 'searching' } });
  });

  /** A tree under fence 7 whose one step rang ada, stopped to be handed off once that step landed and went out. */
  const stoppedWithARing = async (journals: Journals) => {
    const journal = journals.open({ snapshot: snapshotOf({ value: 'ringing' }), fence: { requestId: 'req-1', token: 7 } });
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    journal.freeze();
    await journals.settled();
    return journal;
  };

  it('records a handed-off tree\'s messages as sent once they went out, so its next owner does not send them again', async () => {
    const courier = new Recorder();
    const journals = new Journals(store, courier, createLogger('silent'));
    const journal = await stoppedWithARing(journals);
    expect((await store.snapshots.get('routing:req-1'))?.outbox).toHaveLength(1);
    await journal.markSent();
    expect(courier.sent).toHaveLength(1);
    expect(await store.snapshots.get('routing:req-1')).toMatchObject({ snapshot: { value: 'ringing' }, outbox: [] });
  });

  it('writes nothing on marking sent once a newer owner holds the fence: what is stored stays for that owner to send', async () => {
    const journals = new Journals(store, new Recorder(), createLogger('silent'));
    const journal = await stoppedWithARing(journals);
    await store.commit(() => {}, { requestId: 'req-1', token: 9 });
    await journal.markSent();
    expect((await store.snapshots.get('routing:req-1'))?.outbox).toHaveLength(1);
  });

  it('sends a ring only once its claim holds the agent; a refused ring is not sent, nor what its step went on to say, and the tree is told', async () => {
    const courier = new Recorder();
    const asked: string[] = [];
    const holds = new Map([['ada', true], ['grace', false]]);
    const journals = new Journals(store, courier, createLogger('silent'), async (agentId, requestId) => {
      asked.push(`${agentId}:${requestId}`);
      return holds.get(agentId) ?? false;
    });
    const refused: string[] = [];
    const journal = journals.open({ snapshot: snapshotOf({ value: 'ringing' }), onRingRefused: (agentId) => refused.push(agentId) });
    journal.write(createRequest);
    // Two steps land in one commit: one rings ada, the next rings grace, whom another request holds.
    const ada = journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 }, { claim: { agentId: 'ada', requestId: 'req-1' } });
    const adaUpdate = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'ringing', agentName: 'Ada' });
    journal.seal();
    const before = journal.emit('agent:ada', 'agent.ringCancelled', { requestId: 'req-1' });
    const grace = journal.emit('agent:grace', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 }, { claim: { agentId: 'grace', requestId: 'req-1' } });
    const graceUpdate = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'ringing', agentName: 'Grace' });
    journal.seal();
    const next = journal.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'searching' });
    journal.seal();
    await journals.settled();
    expect(asked).toEqual(['ada:req-1', 'grace:req-1']);
    expect(courier.sent.map((sent) => sent.message)).toEqual([ada, adaUpdate, before, next]);
    expect(refused).toEqual(['grace']);
    // The outbox keeps the claims and the steps, so a node that sends it again claims again, and drops the same.
    const outbox = (await store.snapshots.get('routing:req-1'))?.outbox;
    expect(outbox).toEqual([ada, adaUpdate, before, grace, graceUpdate, next]);
    expect(new Set([grace.step, graceUpdate.step]).size).toBe(1);
    expect(grace.claim).toEqual({ agentId: 'grace', requestId: 'req-1' });
  });

  it('counts a claim that fails (Redis away) as refused: an agent that may be held elsewhere is never rung', async () => {
    const courier = new Recorder();
    const journals = new Journals(store, courier, createLogger('silent'), () => Promise.reject(new Error('Connection is closed.')));
    const refused: string[] = [];
    const journal = journals.open({ snapshot: snapshotOf({ value: 'ringing' }), onRingRefused: (agentId) => refused.push(agentId) });
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 }, { claim: { agentId: 'ada', requestId: 'req-1' } });
    journal.seal();
    await journals.settled();
    expect(courier.sent).toEqual([]);
    expect(refused).toEqual(['ada']);
  });

  it('sends what a taken-over tree last sent again, with the same ids, before anything it does next', async () => {
    const courier = new Recorder();
    const journals = new Journals(store, courier, createLogger('silent'));
    const first = journals.open({ snapshot: snapshotOf({ value: 'ringing' }) });
    first.write(createRequest);
    const ring = first.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    first.joinCall('call-1', 'ada', 'v-1');
    first.seal();
    await journals.settled();
    const stored = (await store.snapshots.get('routing:req-1'))!.outbox.map((message) => StoredOutboxMessage.parse(message));

    const next = journals.open({ snapshot: snapshotOf({ value: 'ringing' }) });
    next.resend(stored as OutboxMessage[]);
    const later = next.emit('visitor:v-1', 'routing.update', { requestId: 'req-1', state: 'ringing' });
    next.seal();
    await journals.settled();
    const sent = courier.sent.map((entry) => entry.message);
    expect(sent.slice(2).map((message) => message.eid)).toEqual([ring.eid, stored[1]!.eid, later.eid]);
    expect(sent[2]).toEqual(ring);
  });

  it('sends nothing more once revoked, not even what a commit already out would have sent', async () => {
    let landed: () => void = () => {};
    const held = new Promise<void>((resolve) => (landed = resolve));
    const slow: Store = {
      ...store,
      commit: async (fill, fence) => {
        await held;
        await store.commit(fill, fence);
      },
    };
    const courier = new Recorder();
    const journals = new Journals(slow, courier, createLogger('silent'));
    const journal = journals.open({ snapshot: snapshotOf({ value: 'ringing' }) });
    journal.write(createRequest);
    journal.emit('agent:ada', 'agent.ring', { requestId: 'req-1', visitorName: 'Vera', expiresAt: 10 });
    journal.seal();
    await Promise.resolve();
    journal.revoke();
    journal.emit('agent:ada', 'agent.ringCancelled', { requestId: 'req-1' });
    journal.seal();
    landed();
    await journals.settled();
    expect(courier.sent).toEqual([]);
  });

  it('refuses to send again an outbox entry of a shape it does not know', () => {
    expect(StoredOutboxMessage.safeParse({ eid: 'x', kind: 'teleport' }).success).toBe(false);
    expect(StoredOutboxMessage.safeParse({ eid: 'x', kind: 'emit', room: 'agent:ada', event: 'no.such.event', payload: { eid: 'x' } }).success).toBe(false);
    expect(StoredOutboxMessage.safeParse({ eid: '', kind: 'leaveCall', callId: 'c' }).success).toBe(false);
    expect(StoredOutboxMessage.safeParse({ eid: 'x', kind: 'leaveCall', callId: 'c' }).success).toBe(true);
  });
});
