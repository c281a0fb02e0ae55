export { createIdentityResolver, IdentityError, identityAttributeNames } from './identity';
export type { ClaimMapping, Identity, IdentityOptions, JwtVerifyOptions } from './identity';
export { decideFeature, featureRequirement } from './feature-decision';
export type { FeatureDecision, FeatureRequirement, FeatureRequirementOptions } from './feature-decision';
export { OfrepEvaluator } from './ofrep';
export type { OfrepOptions, OfrepResponse } from './ofrep';
export { ChangeStream } from './change-stream';
export type { ChangeStreamOptions } from './change-stream';
