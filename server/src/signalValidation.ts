/**
 * Compiled validators for the events a call sends many times a second (candidates, offers, answers, media
 * reports). zod walks its schema for every payload; ajv compiles the same schema, turned into JSON Schema by
 * zod itself, into one function. What JSON Schema cannot say (the protocol's refinements) is carried over
 * explicitly: a prefix as a `pattern`, a UTF-8 byte limit as a keyword that calls the protocol's own
 * `fitsInBytes`. Only acceptance is taken from ajv: a payload it rejects is parsed by zod again, so the
 * sender hears exactly the error every other event gives.
 *
 * Server-only: the browser keeps zod alone and never loads ajv.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { z } from 'zod/mini';
import {
  IceCandidate,
  MAX_CANDIDATE_BYTES,
  MAX_SDP_BYTES,
  Sdp,
  clientEventSchemas,
  fitsInBytes,
  parseClientEvent,
  type ParseFailure,
  type ParsedClientEvent,
} from '@callchart/machines';

export const COMPILED_EVENTS = [
  'signal.candidate',
  'signal.offer',
  'signal.answer',
  'signal.iceRestart',
  'signal.restartRequest',
  'call.media',
] as const satisfies readonly (keyof typeof clientEventSchemas)[];
type CompiledEvent = (typeof COMPILED_EVENTS)[number];

const UTF8_MAX_BYTES = 'utf8MaxBytes';

/**
 * The JSON Schema form of each refinement in the compiled events' schemas, keyed by the schema that holds it.
 * A schema with a refinement missing here cannot be compiled (see `refinementsOf`), so a new refinement in the
 * protocol cannot silently go unchecked.
 */
const REFINEMENTS = new Map<z.core.$ZodType, Record<string, unknown>>([
  [Sdp, { pattern: '^v=0', [UTF8_MAX_BYTES]: MAX_SDP_BYTES }],
  [IceCandidate.shape.candidate, { pattern: '^(?:candidate:|$)', [UTF8_MAX_BYTES]: MAX_CANDIDATE_BYTES }],
]);

function refinementsOf(schema: z.core.$ZodType): Record<string, unknown> | undefined {
  const refined = (schema._zod.def.checks ?? []).some((check) => check._zod.def.check === 'custom');
  if (!refined) return undefined;
  const carried = REFINEMENTS.get(schema);
  if (carried === undefined) throw new Error('A refinement in a compiled event has no JSON Schema form; add it to REFINEMENTS.');
  return carried;
}

/** The JSON Schema ajv compiles for `event`: zod's own conversion plus the refinements it leaves out. */
export function compiledEventSchema(event: CompiledEvent): Record<string, unknown> {
  return z.toJSONSchema(clientEventSchemas[event], {
    unrepresentable: 'throw',
    override: ({ zodSchema, jsonSchema }) => {
      const carried = refinementsOf(zodSchema as z.core.$ZodType);
      if (carried) Object.assign(jsonSchema, carried);
    },
  }) as Record<string, unknown>;
}

function compile(): Map<string, ValidateFunction> {
  // ajv's string lengths count a surrogate pair as one character, as zod's do; `unicodeRegExp: false` compiles
  // patterns without the `u` flag, as zod's own regexes are.
  const ajv = new Ajv2020({ allErrors: false, unicodeRegExp: false, strict: true });
  ajv.addKeyword({
    keyword: UTF8_MAX_BYTES,
    type: 'string',
    schemaType: 'number',
    errors: false,
    validate: (limit: number, text: string) => fitsInBytes(text, limit),
  });
  return new Map(COMPILED_EVENTS.map((event) => [event, ajv.compile(compiledEventSchema(event))]));
}

const validators = compile();

/** `parseClientEvent`, with the compiled check first for the events that have one. Never throws. */
export function parseIncomingEvent(event: string, payload: unknown): ParsedClientEvent | ParseFailure {
  const validate = validators.get(event);
  if (validate !== undefined) {
    try {
      if (validate(payload)) return { ok: true, event, data: payload } as ParsedClientEvent;
    } catch {
      // A hostile getter or proxy: zod's parse below turns it into the usual error.
    }
  }
  return parseClientEvent(event, payload);
}
