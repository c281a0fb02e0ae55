import { HttpException, HttpStatus } from '@nestjs/common';
import type { FeatureDecision } from '@rollgate/server';

/** A decision other than allow; `flagKey` and `reason` are for your logs, never sent to the client. */
export type FeatureRefusal = Exclude<FeatureDecision, { outcome: 'allow' }>;

/** 403 `{"error":"feature_not_enabled"}`: the flags say no for this caller. */
export class FeatureDeniedException extends HttpException {
  readonly code = 'ERR_ROLLGATE_FEATURE_DENIED';
  constructor(readonly decision?: FeatureRefusal) {
    super({ error: 'feature_not_enabled' }, HttpStatus.FORBIDDEN);
  }
}

/** 503 `{"error":"feature_decision_unavailable"}` (with Retry-After): no decision could be made, so none is allowed. */
export class FeatureUnavailableException extends HttpException {
  readonly code = 'ERR_ROLLGATE_FEATURE_UNAVAILABLE';
  constructor(readonly decision?: FeatureRefusal) {
    super({ error: 'feature_decision_unavailable' }, HttpStatus.SERVICE_UNAVAILABLE);
  }
}

/** 401 `{"error":"unauthorized"}` (with `WWW-Authenticate: Bearer`): the caller could not be identified. */
export class IdentityRequiredException extends HttpException {
  readonly code = 'ERR_ROLLGATE_IDENTITY';
  constructor() {
    super({ error: 'unauthorized' }, HttpStatus.UNAUTHORIZED);
  }
}
