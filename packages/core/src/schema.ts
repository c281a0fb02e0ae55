import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';

// JSON schema of one flag, after flagd's `flags.json` (v0.2.15): state, variants (one JSON type
// for all), optional defaultVariant (string or null), targeting (object), metadata (primitives).
// Checks that a schema cannot say well (one type for all variants, defaultVariant is a variant)
// are done in validate.ts, so their messages can name the variants.

const metadataSchema = {
  type: 'object',
  additionalProperties: { type: ['string', 'number', 'boolean'] },
} as const;

export const flagSchema = {
  $id: 'https://rollgate.dev/schema/v0/flag.json',
  type: 'object',
  required: ['state', 'variants'],
  additionalProperties: false,
  properties: {
    key: { type: 'string' },
    state: { enum: ['ENABLED', 'DISABLED'] },
    variants: {
      type: 'object',
      minProperties: 1,
      propertyNames: { type: 'string', minLength: 1 },
      additionalProperties: { type: ['boolean', 'string', 'number', 'object'] },
    },
    defaultVariant: { type: ['string', 'null'] },
    targeting: { type: 'object' },
    metadata: metadataSchema,
  },
} as const;

export const flagSetSchema = {
  $id: 'https://rollgate.dev/schema/v0/flag-set.json',
  type: 'object',
  required: ['flags'],
  properties: {
    $schema: { type: 'string' },
    flags: { type: 'object' },
    $evaluators: { type: 'object' },
    metadata: metadataSchema,
  },
} as const;

let compiled: { flag: ValidateFunction; flagSet: ValidateFunction } | undefined;

/** Validators are compiled on first use, so importing the package costs nothing. */
export function validators(): { flag: ValidateFunction; flagSet: ValidateFunction } {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
    compiled = { flag: ajv.compile(flagSchema), flagSet: ajv.compile(flagSetSchema) };
  }
  return compiled;
}

/** Turns an ajv error into a dotted path and a sentence. */
export function describeAjvError(base: string, err: ErrorObject): { path: string; message: string } {
  const segments = err.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const path = [base, ...segments].filter(Boolean).join('.');
  switch (err.keyword) {
    case 'required':
      return { path, message: `missing required property "${(err.params as { missingProperty: string }).missingProperty}"` };
    case 'additionalProperties':
      return { path, message: `unknown property "${(err.params as { additionalProperty: string }).additionalProperty}"` };
    case 'enum':
      return {
        path,
        message: `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}, got ${JSON.stringify(err.data)}`,
      };
    case 'type':
      return { path, message: `must be ${String((err.params as { type: string | string[] }).type).replace(/,/g, ' or ')}, got ${typeName(err.data)}` };
    case 'minProperties':
      return { path, message: 'must have at least one entry' };
    case 'propertyNames':
      return { path, message: 'names must not be empty' };
    default:
      return { path, message: err.message ?? 'is invalid' };
  }
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
