import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentsFileError, authenticateAgent, loadAgentsFile, parseAgents, seedAgents, type AgentSeed } from './agents.ts';
import { loadConfig } from './config.ts';
import { verifyPassword } from './auth.ts';
import { openStore, type Store } from './store.ts';
import { StoreUnavailableError } from './storeReads.ts';

const seeds: AgentSeed[] = [
  { id: 'ada', name: 'Ada Lovelace', email: 'ada@example.com', password: 'demo-ada', pools: ['support', 'sales'], roles: ['agent'] },
  { id: 'grace', name: 'Grace Hopper', email: 'grace@example.com', password: 'demo-grace', pools: ['support'], roles: ['agent'] },
];

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'callchart-agents-'));
  store = await openStore({ databasePath: path.join(dir, 'db.sqlite') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the shipped agents file', () => {
  it('has three support agents, one of them also in sales, and an inspector', () => {
    const agents = loadAgentsFile(loadConfig({}).agentsFile);
    const support = agents.filter((agent) => agent.pools.includes('support') && agent.roles.includes('agent'));
    expect(support).toHaveLength(3);
    expect(support.filter((agent) => agent.pools.includes('sales'))).toHaveLength(1);
    expect(agents.filter((agent) => agent.roles.includes('inspector'))).toHaveLength(1);
  });
});

describe('parseAgents', () => {
  it.each([
    [[], 'the list must not be empty'],
    [[{ ...seeds[0], email: 'nope' }], '[0].email must be an email address'],
    [[{ ...seeds[0], roles: ['admin'] }], '[0].roles[0] must be one of agent, inspector'],
    [[{ ...seeds[0], password: 'short' }], '[0].password must be at least 8 characters'],
    [[{ ...seeds[0], extra: 1 }], '[0].extra is not an allowed field'],
    [[seeds[0], { ...seeds[1], id: 'ada' }], '[1].id is used twice'],
    [[seeds[0], { ...seeds[1], email: 'ADA@example.com' }], '[1].email is used twice'],
  ])('refuses %j, naming the field', (data, message) => {
    expect(() => parseAgents(data, 'agents.json')).toThrow(new AgentsFileError(`agents.json: ${message}.`));
  });

  it('names the file when it is not JSON', () => {
    const file = path.join(dir, 'agents.json');
    writeFileSync(file, '[{');
    expect(() => loadAgentsFile(file)).toThrow(AgentsFileError);
    expect(() => loadAgentsFile(file)).toThrow(file);
  });
});

describe('seedAgents', () => {
  it('stores scrypt hashes, never the plain password', async () => {
    await seedAgents(store, seeds);
    const ada = await store.agents.get('ada');
    expect(ada?.passwordHash).toMatch(/^scrypt\$/);
    expect(ada?.passwordHash).not.toContain('demo-ada');
    expect(await verifyPassword('demo-ada', ada!.passwordHash)).toBe(true);
  });

  it('is idempotent: a second run changes nothing, and keeps routing state', async () => {
    await seedAgents(store, seeds);
    await store.commit((writes) => writes.agents.markAssigned('grace', 1234));
    const before = await store.agents.list();
    await seedAgents(store, seeds);
    expect(await store.agents.list()).toEqual(before);
    expect((await store.agents.get('grace'))?.lastAssignedAt).toBe(1234);
  });

  it('rehashes a changed password and updates the other fields', async () => {
    await seedAgents(store, seeds);
    const oldHash = (await store.agents.get('ada'))!.passwordHash;
    await seedAgents(store, [{ ...seeds[0]!, password: 'new-password', pools: ['sales'] }, seeds[1]!]);
    const ada = (await store.agents.get('ada'))!;
    expect(ada.passwordHash).not.toBe(oldHash);
    expect(ada.pools).toEqual(['sales']);
    expect(await authenticateAgent(store, 'ada@example.com', 'demo-ada')).toBeNull();
    expect((await authenticateAgent(store, 'ada@example.com', 'new-password'))?.id).toBe('ada');
  });
});

describe('authenticateAgent', () => {
  it('accepts the right password and refuses a wrong one or an unknown email', async () => {
    await seedAgents(store, seeds);
    expect((await authenticateAgent(store, 'Grace@Example.com', 'demo-grace'))?.id).toBe('grace');
    expect(await authenticateAgent(store, 'grace@example.com', 'demo-ada')).toBeNull();
    expect(await authenticateAgent(store, 'nobody@example.com', 'demo-grace')).toBeNull();
  });

  it('rejects with StoreUnavailableError, not "wrong password", when the accounts cannot be read', async () => {
    await seedAgents(store, seeds);
    await store.close();
    const refused = authenticateAgent(store, 'grace@example.com', 'demo-grace');
    await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
    // Reopened for afterEach, which closes it.
    store = await openStore({ databasePath: path.join(dir, 'db.sqlite') });
  });
});
