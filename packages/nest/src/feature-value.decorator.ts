import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { EvaluationContext, EvaluationDetails, FlagValue, JsonValue } from '@openfeature/server-sdk';
import { ConfigError } from '@rollgate/redis';
import { IdentityError, recordExposure, withExposureScope } from '@rollgate/server';
import { RollgateRuntime } from './rollgate.runtime';

interface FeatureValueSpec {
  flagKey: string;
  defaultValue: FlagValue;
  domain: string | undefined;
}

async function evaluate(spec: FeatureValueSpec, context: ExecutionContext): Promise<FlagValue> {
  if (context.getType() !== 'http') return spec.defaultValue;
  const req = context.switchToHttp().getRequest<object>();
  const runtime = RollgateRuntime.of(req);
  if (!runtime) {
    throw new ConfigError(`@FeatureValue('${spec.flagKey}'): RollgateModule is not imported in this application (its interceptor gives each request the flag client)`);
  }
  let ctx: EvaluationContext = {};
  try {
    ctx = { ...(await runtime.identify(req)).context } as EvaluationContext;
  } catch (e) {
    if (!(e instanceof IdentityError)) throw e; // anonymous caller: evaluated without identity
  }
  const client = runtime.clientFor(spec.domain ?? runtime.domain);
  let details: EvaluationDetails<FlagValue>;
  switch (typeof spec.defaultValue) {
    case 'boolean':
      details = await client.getBooleanDetails(spec.flagKey, spec.defaultValue, ctx);
      break;
    case 'string':
      details = await client.getStringDetails(spec.flagKey, spec.defaultValue, ctx);
      break;
    case 'number':
      details = await client.getNumberDetails(spec.flagKey, spec.defaultValue, ctx);
      break;
    default:
      details = await client.getObjectDetails(spec.flagKey, spec.defaultValue as JsonValue, ctx);
  }
  // the handler runs with this value: the request counts in its variant's arm (when outcomes are recorded)
  const exposures = runtime.exposuresOf(req, context.switchToHttp().getResponse());
  if (exposures) withExposureScope(exposures, () => recordExposure(spec.flagKey, details, ctx as never));
  return details.value;
}

const featureValueParam = createParamDecorator((spec: FeatureValueSpec, context: ExecutionContext) => evaluate(spec, context));

/**
 * The flag's value for the caller (their identity as evaluation context), or `defaultValue` on
 * any error. The type of `defaultValue` picks the evaluation (boolean, string, number, object).
 * It does not restrict access: use @RequireFeature for that.
 *
 * ```ts
 * @Get('checkout') checkout(@FeatureValue('checkout-variant', 'classic') variant: string) { ... }
 * ```
 */
export function FeatureValue<T extends FlagValue>(flagKey: string, defaultValue: T, options: { domain?: string } = {}): ParameterDecorator {
  if (typeof flagKey !== 'string' || flagKey === '') throw new ConfigError('@FeatureValue: give a flag key');
  if (defaultValue === undefined || defaultValue === null) throw new ConfigError(`@FeatureValue('${flagKey}'): give a default value; its type picks the evaluation`);
  return featureValueParam({ flagKey, defaultValue, domain: options.domain });
}
