import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { openStore, StaleFenceError, type Store, type StoreWrites } from '../store.ts';
import { Journals, type Courier, type OutboxMessage, type SnapshotWrite } from './journal.ts';

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
    const courier: Courier = { deliver: (message) => order.push(message.kind === 'emit' ? message.event : message.kind) };
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
