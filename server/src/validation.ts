/**
 * How a zod failure becomes one sentence that names the offending field, for the environment and for
 * HTTP bodies alike, worded by the wire protocol's own error map so a client sees one style everywhere.
 */
import { z } from 'zod';

export { issueFragment } from '@callchart/machines';

export interface FieldIssue {
  /** Dotted path with `[i]` for array items (`iceServers[0].urls`); undefined when the whole value is wrong. */
  field: string | undefined;
  /** The fragment that follows the field's name. */
  fragment: string;
}

const MAX_SEGMENT = 64;

// Unknown keys are chosen by whoever sent the data, so they are clipped before they reach a message.
function formatPath(path: readonly PropertyKey[]): string | undefined {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      out += `[${String(segment)}]`;
      continue;
    }
    const text = typeof segment === 'symbol' ? '(symbol)' : segment || '(empty)';
    const clipped = text.length > MAX_SEGMENT ? `${text.slice(0, MAX_SEGMENT)}…` : text;
    out += out === '' ? clipped : `.${clipped}`;
  }
  return out === '' ? undefined : out;
}

/** The first issue of a failed parse (classic zod's or zod/mini's); zod reports them in the order of the schema's keys. */
export function firstIssue(error: z.core.$ZodError): FieldIssue {
  const issue = error.issues[0];
  if (issue === undefined) return { field: undefined, fragment: 'is invalid' };
  // An unknown key is reported on its parent; naming the key itself tells the sender what to remove.
  const path =
    issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
  return { field: formatPath(path), fragment: issue.message };
}
