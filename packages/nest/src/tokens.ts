// Dependency-injection tokens and metadata keys, in one place.

/** The options given to forRoot / returned by the forRootAsync factory. */
export const ROLLGATE_MODULE_OPTIONS = Symbol('rollgate:module-options');

/** The OpenFeature provider the module registered (created by it or given in `provider`). */
export const ROLLGATE_PROVIDER = Symbol('rollgate:provider');

/** The FlagStore in use (created from `store` options, or given), or null with an existing `provider`. */
export const ROLLGATE_STORE = Symbol('rollgate:store');

/** An OpenFeature `Client` bound to the module's domain. Inject with `@InjectFeatureClient()`. */
export const FEATURE_CLIENT = Symbol('rollgate:feature-client');

/** The module's runtime (identity, provider lifecycle, OFREP pieces); not exported. */
export const ROLLGATE_RUNTIME = Symbol('rollgate:runtime');

/** Metadata key of @RequireFeature (an array of requirements, class or handler). */
export const REQUIRE_FEATURE_METADATA = 'rollgate:require-feature';
