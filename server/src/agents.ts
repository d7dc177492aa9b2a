/**
 * The agent accounts: read from the agents file, seeded into the store with hashed passwords, and
 * checked at login. The file holds demo passwords in plain text; only their hashes reach the database.
 */
import { readFileSync } from 'node:fs';
import { MAX_PASSWORD_LENGTH } from '@callchart/machines';
import { DisplayName, Id } from '@callchart/machines/protocol';
import { z } from 'zod';
import { hashPassword, verifyPassword } from './auth.ts';
import type { AgentRecord, AgentSeedRecord, Store } from './store.ts';
import { storeRead, STORE_READ_DEADLINE_MS } from './storeReads.ts';
import { firstIssue, issueFragment } from './validation.ts';

export const AGENT_ROLES = ['agent', 'inspector'] as const;
export type AgentRole = (typeof AGENT_ROLES)[number];

const MIN_PASSWORD_LENGTH = 8;

const AgentSeed = z.strictObject({
  id: Id,
  name: DisplayName,
  email: z.string().trim().min(3).max(254).regex(/^[^\s@]+@[^\s@]+$/, { error: 'must be an email address' }),
  password: z.string().min(MIN_PASSWORD_LENGTH).max(MAX_PASSWORD_LENGTH),
  pools: z.array(Id).max(64),
  roles: z.array(z.enum(AGENT_ROLES)).min(1).max(AGENT_ROLES.length),
});
export type AgentSeed = z.infer<typeof AgentSeed>;

const AgentsFile = z
  .array(AgentSeed)
  .min(1)
  .superRefine((agents, ctx) => {
    const ids = new Set<string>();
    const emails = new Set<string>();
    agents.forEach((agent, index) => {
      if (ids.has(agent.id)) ctx.addIssue({ code: 'custom', path: [index, 'id'], message: 'is used twice' });
      const email = agent.email.toLowerCase();
      if (emails.has(email)) ctx.addIssue({ code: 'custom', path: [index, 'email'], message: 'is used twice' });
      ids.add(agent.id);
      emails.add(email);
    });
  });

/** The agents file cannot be read or is invalid; the message names the file and the field. */
export class AgentsFileError extends Error {
  override readonly name = 'AgentsFileError';
}

export function parseAgents(data: unknown, source = 'agents'): AgentSeed[] {
  const result = AgentsFile.safeParse(data, { error: issueFragment });
  if (!result.success) {
    const { field, fragment } = firstIssue(result.error);
    throw new AgentsFileError(`${source}: ${field === undefined ? 'the list' : field} ${fragment}.`);
  }
  return result.data;
}

export function loadAgentsFile(file: string): AgentSeed[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new AgentsFileError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseAgents(data, file);
}

/**
 * Brings the stored accounts in line with `seeds`. A password that still matches keeps its stored hash,
 * so seeding at every start changes nothing; `lastAssignedAt` is never touched. Accounts no longer in
 * the file are kept, because past calls refer to them.
 */
export async function seedAgents(store: Store, seeds: readonly AgentSeed[]): Promise<void> {
  const stored = new Map((await store.agents.list()).map((agent) => [agent.id, agent]));
  const records = await Promise.all(
    seeds.map(async (seed): Promise<AgentSeedRecord> => {
      const existing = stored.get(seed.id);
      const unchanged = existing !== undefined && (await verifyPassword(seed.password, existing.passwordHash));
      return {
        id: seed.id,
        name: seed.name,
        email: seed.email,
        passwordHash: unchanged ? existing.passwordHash : await hashPassword(seed.password),
        pools: seed.pools,
        roles: seed.roles,
      };
    }),
  );
  await store.agents.seed(records);
}

// Hashed once, on the first login attempt for an unknown email, so that answer costs as much as a wrong
// password and response times do not tell which emails exist.
let decoyHash: Promise<string> | undefined;

/**
 * The agent whose email and password match, or null; the same work either way. Rejects with
 * `StoreUnavailableError` when the accounts cannot be read: that is no answer about the password.
 */
export async function authenticateAgent(
  store: Store,
  email: string,
  password: string,
  deadlineMs = STORE_READ_DEADLINE_MS,
): Promise<AgentRecord | null> {
  const agent = await storeRead(store.agents.findByEmail(email), deadlineMs);
  decoyHash ??= hashPassword('decoy password that matches no account');
  const matches = await verifyPassword(password, agent?.passwordHash ?? (await decoyHash));
  return agent !== undefined && matches ? agent : null;
}

export function isInspector(roles: readonly string[]): boolean {
  return roles.includes('inspector');
}

/** Whether the account takes calls: only then is it in presence, rung, and able to accept. */
export function takesCalls(roles: readonly string[]): boolean {
  return roles.includes('agent');
}
