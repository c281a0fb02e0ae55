import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { EvaluationContext, FlagValue, JsonValue } from '@openfeature/server-sdk';
import { ConfigError } from '@rollgate/redis';
import { IdentityError } from '@rollgate/server';
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
  switch (typeof spec.defaultValue) {
    case 'boolean':
      return client.getBooleanValue(spec.flagKey, spec.defaultValue, ctx);
    case 'string':
      return client.getStringValue(spec.flagKey, spec.defaultValue, ctx);
    case 'number':
      return client.getNumberValue(spec.flagKey, spec.defaultValue, ctx);
    default:
      return client.getObjectValue(spec.flagKey, spec.defaultValue as JsonValue, ctx);
  }
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
