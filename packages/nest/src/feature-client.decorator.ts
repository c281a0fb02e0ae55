import { Inject } from '@nestjs/common';
import { FEATURE_CLIENT } from './tokens';

/**
 * Injects the OpenFeature `Client` of the module's domain. Inside a request it evaluates for the
 * caller without passing a context (the transaction context), unless `transactionContext: false`.
 *
 * ```ts
 * constructor(@InjectFeatureClient() private readonly flags: Client) {}
 * ```
 */
export function InjectFeatureClient(): PropertyDecorator & ParameterDecorator {
  return Inject(FEATURE_CLIENT);
}
