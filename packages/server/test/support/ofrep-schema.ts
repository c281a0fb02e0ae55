import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';

// OFREP answers checked against the protocol's own OpenAPI document: ofrep-openapi.json is
// open-feature/protocol's service/openapi.yaml at d1a63a4 (2026-06-19, Apache-2.0), converted to
// JSON unchanged (the JSON holds no comment, hence this note). A test helper, not exported.
//
// One reading differs from the letter of the document: a success's value is `oneOf` boolean,
// string, integer, float, object or "code default" — but the code-default schema matches every
// object and an integer is also a float, so no valued answer can match exactly one. It is read
// as `anyOf`; everything else is validated as written.

type Json = Record<string, unknown>;

const doc = JSON.parse(readFileSync(join(__dirname, 'ofrep-openapi.json'), 'utf8')) as Json;
const schemas = (doc.components as { schemas: Record<string, Json> }).schemas;
const valueUnion = (schemas.evaluationSuccess!.allOf as Json[])[1]!;
(schemas.evaluationSuccess!.allOf as Json[])[1] = { anyOf: valueUnion.oneOf };

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema(doc, 'ofrep');

const PATHS = { bulk: '/ofrep/v1/evaluate/flags', single: '/ofrep/v1/evaluate/flags/{key}' } as const;

/**
 * Validates an answer's body against the schema the document gives for this operation and
 * status. `schema` is undefined when the document gives none (401, 403, 429, statuses it does not
 * list such as 413): there is nothing to check the body against.
 */
export function checkOfrepAnswer(operation: keyof typeof PATHS, status: number, body: unknown): { schema: string | undefined; errors: string[] } {
  const responses = ((doc.paths as Record<string, { post: { responses: Record<string, { content?: Record<string, { schema: { $ref: string } }> }> } }>)[PATHS[operation]]!).post.responses;
  const ref = responses[String(status)]?.content?.['application/json']?.schema.$ref;
  if (ref === undefined) return { schema: undefined, errors: [] };
  const validate = ajv.getSchema(`ofrep${ref}`)!;
  return validate(body) ? { schema: ref, errors: [] } : { schema: ref, errors: (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? e.keyword}`) };
}

/** Validates one Server-Sent Event (its fields and its JSON data) against sseEvent / sseEventData. */
export function checkOfrepEvent(event: { id?: string; event?: string; data: string }): string[] {
  const errors: string[] = [];
  const validateEvent = ajv.getSchema('ofrep#/components/schemas/sseEvent')!;
  if (!validateEvent(event)) errors.push(...(validateEvent.errors ?? []).map((e) => `event${e.instancePath} ${e.message ?? e.keyword}`));
  let data: unknown;
  try {
    data = JSON.parse(event.data);
  } catch {
    return [...errors, 'data is not JSON'];
  }
  const validateData = ajv.getSchema('ofrep#/components/schemas/sseEventData')!;
  if (!validateData(data)) errors.push(...(validateData.errors ?? []).map((e) => `data${e.instancePath} ${e.message ?? e.keyword}`));
  return errors;
}

/** The events of an SSE text (blocks with data), with their fields as the EventSource parser reads them. */
export function sseEvents(text: string): { id?: string; event?: string; data: string }[] {
  const events: { id?: string; event?: string; data: string }[] = [];
  for (const block of text.split('\n\n')) {
    const fields: { id?: string; event?: string; data?: string } = {};
    for (const line of block.split('\n')) {
      const m = /^(id|event|data): ?(.*)$/.exec(line);
      if (!m) continue;
      const [, name, value] = m as unknown as [string, 'id' | 'event' | 'data', string];
      fields[name] = name === 'data' && fields.data !== undefined ? `${fields.data}\n${value}` : value;
    }
    if (fields.data !== undefined) events.push({ ...fields, data: fields.data });
  }
  return events;
}
