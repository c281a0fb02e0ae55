export { identity, type IdentityMiddlewareBehaviour, type IdentityMiddlewareOptions } from './identity.middleware';
export { defineIdentity } from '@rollgate/server';
export type { EnrichmentOptions, IdentityDefinition, IdentityOptions } from '@rollgate/server';
export { requireFeature, type RequireFeatureOptions } from './require-feature.middleware';
export { ofrep, type OfrepRouter, type OfrepRouterOptions } from './ofrep.router';
export { getRequestIdentity } from './request-identity';
export { adminRouter, type AdminDashboardOptions, type AdminRouter, type AdminRouterOptions } from './admin.router';
export { recordOutcomes } from './record-outcomes.middleware';
export type { RecordOutcomesOptions } from './record-outcomes.middleware';
