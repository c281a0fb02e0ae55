import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import type { Provider } from '@openfeature/server-sdk';
import { ConfigError, type FlagStore, type RedisFlagStoreOptions, type RollgateProviderOptions } from '@rollgate/redis';
import { isIdentityDefinition, type ChangeStreamOptions, type Identity, type IdentityDefinition, type IdentityOptions, type OfrepOptions, type OutcomeSink, type TrackingOptions } from '@rollgate/server';

/** The OFREP controller: bulk + single evaluation and the SSE change stream, as `@rollgate/express`'s `ofrep()`. */
export interface RollgateOfrepOptions extends Pick<OfrepOptions, 'clientVisible' | 'clientAttributes' | 'exposedMetadata'> {
  /** Prefix of the routes, under Nest's global prefix: `${path}/ofrep/v1/...`. @default '' */
  path?: string;
  /** Browser origins allowed to call (CORS, with ETag exposed). @default none (same origin only) */
  cors?: { origins: readonly string[] };
  /** Largest JSON body accepted, in bytes or as '16kb' / '1mb'. @default '16kb' */
  bodyLimit?: number | string;
  /** The SSE change stream (OFREP eventStreams); false to turn it off. @default on */
  stream?: false | Omit<ChangeStreamOptions, 'events'>;
  /**
   * Accept events from browsers at `POST {path}/rollgate/v1/events` (the web provider's `track()`):
   * allow-listed names, counted in the arms of the variants the server evaluates for the caller,
   * rate-limited. Needs the module's `outcomes`. @default off (the route answers 404)
   */
  tracking?: TrackingOptions;
  /**
   * Class decorators applied to the controller, e.g. your own `@Public()` so that a global auth
   * guard lets the SSE stream through (EventSource sends no Authorization; its ticket is its credential).
   */
  decorators?: readonly ClassDecorator[];
}

/**
 * The admin API controller (opt-in): the routes and answers of `@rollgate/express`'s
 * `adminRouter()`, over the module's store and its one write path.
 */
export interface RollgateAdminOptions {
  /**
   * Who may use the admin API. Required: without it the module refuses to start. Return true
   * to allow, e.g. `who => Array.isArray(who.context.roles) && who.context.roles.includes('flag-admin')`; a throwing callback denies.
   */
  authorize: (identity: Identity) => boolean | Promise<boolean>;
  /** Prefix of the routes, under Nest's global prefix: `${path}/rollgate/admin/...`. @default '' */
  path?: string;
  /** Largest JSON body accepted, in bytes or as '256kb' / '1mb'. @default '256kb' (Nest's own JSON parser stops at 100kb unless you raise it) */
  bodyLimit?: number | string;
  /** Class decorators applied to the controller (and to the dashboard's), e.g. your own auth guard or `@ApiExcludeController()`. */
  decorators?: readonly ClassDecorator[];
  /**
   * Serve the admin dashboard (the `@rollgate/dashboard` package, installed beside this one) at
   * `${path}/rollgate/` — or at `dashboard.path` below `path`. The page and its files are public
   * static files (they hold no data); everything it shows comes from the admin API, behind
   * `authorize`. With forRootAsync, give it in forRootAsync's own `admin`. @default off
   */
  dashboard?: boolean | RollgateDashboardOptions;
}

/** Where the admin dashboard is served and from which files. */
export interface RollgateDashboardOptions {
  /** Below the admin controller's `path`: the page is `${path}/`, its files `${path}/assets/…`. @default '/rollgate' */
  path?: string;
  /** The built files. @default @rollgate/dashboard's `dashboardDir` */
  dir?: string;
}

/** Receives warnings (provider not ready at boot) and one debug line per refusal. @default Nest's Logger('Rollgate') */
export interface RollgateLogger {
  warn(message: string): void;
  debug?(message: string): void;
}

/**
 * Who is calling is defined here once — `jwt` or `getIdentity`, `claims`, `enrich` — and used by
 * `@RequireFeature`, `@FeatureValue`, the OFREP controller and the admin API alike. Or give
 * `identity`: a definition from `defineIdentity()` that other parts of the app share.
 */
export interface RollgateModuleOptions extends IdentityOptions {
  /**
   * The identity defined once with `defineIdentity()` (from @rollgate/server or
   * @rollgate/express), when Express routers in the same process use it too. Instead of `jwt`,
   * `getIdentity`, `claims`, `enrich` and `maxHeaderLength`, never beside them.
   */
  identity?: IdentityDefinition;
  /**
   * Where flags come from: RedisFlagStore options (the module creates the store and closes it on
   * shutdown) or an existing FlagStore such as a MemoryFlagStore (yours to close). The module
   * creates the RollgateProvider over it. Exactly one of `store` / `provider`.
   */
  store?: FlagStore | RedisFlagStoreOptions;
  /** An existing OpenFeature provider to register instead (yours to close). */
  provider?: Provider;
  /** Further RollgateProvider options when the module creates the provider. */
  providerOptions?: Omit<RollgateProviderOptions, 'store' | 'initTimeoutMs'>;
  /** OpenFeature domain to register the provider under. @default the default provider */
  domain?: string;
  /**
   * How long start-up waits for the provider to be ready. After it, the app starts anyway and
   * guards answer 503 until the provider is ready. @default 5000
   */
  readyTimeoutMs?: number;
  /** Register the module globally (forRoot; forRootAsync takes it beside useFactory). @default true */
  global?: boolean;
  /**
   * Run each HTTP handler inside OpenFeature's transaction context for the caller (when one is
   * identified), so evaluations without a context target them. @default true
   */
  transactionContext?: boolean;
  /** Serve OFREP (bulk, single, SSE) from a controller. @default off */
  ofrep?: RollgateOfrepOptions;
  /** Serve the admin API (flags, evaluators, audit, revert) from a controller. Needs `store`. @default off */
  admin?: RollgateAdminOptions;
  /**
   * Count each request's outcome (5xx or thrown, and latency) in the arm of the flag variants it
   * was served — by `@RequireFeature` when it lets the request in, `@FeatureValue`, or
   * `recordExposure` — and `client.track()` events made while handling it: what a guarded
   * rollout decides on. `sink` is an `OutcomeRecorder` from @rollgate/rollouts. @default off
   */
  outcomes?: { sink: OutcomeSink };
  logger?: RollgateLogger;
}

export interface RollgateModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Returns the options (e.g. from ConfigService). `global` and `ofrep.path`/`decorators` are taken from here, not from its result. */
  useFactory: (...args: any[]) => RollgateModuleOptions | Promise<RollgateModuleOptions>; // eslint-disable-line @typescript-eslint/no-explicit-any
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  /** @default true */
  global?: boolean;
  /**
   * Registers the OFREP controller. Controllers are fixed when the module is defined, so this is
   * given here; the rest of the OFREP options come from the factory's `ofrep`. @default off
   */
  ofrep?: boolean | Pick<RollgateOfrepOptions, 'path' | 'decorators'>;
  /**
   * Registers the admin API controller (fixed when the module is defined, like `ofrep`). The
   * factory's options must then contain `admin: { authorize }`. @default off
   */
  admin?: boolean | Pick<RollgateAdminOptions, 'path' | 'decorators' | 'dashboard'>;
}

/** A controller's static part (route prefix and class decorators). */
export interface ControllerRegistration {
  path: string;
  decorators: readonly ClassDecorator[];
}
export type OfrepRegistration = ControllerRegistration;
export interface AdminRegistration extends ControllerRegistration {
  /** The dashboard's controller is registered too. */
  dashboard?: true | RollgateDashboardOptions;
}

const DOCS = 'see docs/nest.md';

function fail(message: string): never {
  throw new ConfigError(`RollgateModule: ${message} (${DOCS})`);
}

export function isFlagStore(value: unknown): value is FlagStore {
  return !!value && typeof (value as FlagStore).load === 'function' && typeof (value as FlagStore).watch === 'function' && typeof (value as FlagStore).close === 'function';
}

/** Bytes from 16384, '16kb', '1mb' or '512b'. */
export function parseBodyLimit(limit: number | string | undefined, option = 'ofrep.bodyLimit', defaultBytes = 16 * 1024): number {
  if (limit === undefined) return defaultBytes;
  if (typeof limit === 'number') {
    if (Number.isInteger(limit) && limit > 0) return limit;
  } else {
    const m = /^\s*(\d+)\s*(b|kb|mb)?\s*$/i.exec(limit);
    if (m) {
      const n = Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 * 1024 } as const)[(m[2]?.toLowerCase() ?? 'b') as 'b' | 'kb' | 'mb'];
      if (n > 0) return n;
    }
  }
  return fail(`${option} must be a positive number of bytes or a size such as '16kb', got ${JSON.stringify(limit)}`);
}

/** Checks the options once, when the module is defined (forRoot) or its factory has run (forRootAsync). */
export function validateModuleOptions(options: RollgateModuleOptions): void {
  if (!options || typeof options !== 'object') fail('options are required: give `store` (or `provider`) and `jwt` or `getIdentity`');
  const hasStore = options.store !== undefined && options.store !== null;
  const hasProvider = options.provider !== undefined && options.provider !== null;
  if (hasStore === hasProvider) {
    fail(hasStore ? 'give either `store` or `provider`, not both' : 'give `store` (RedisFlagStore options or a FlagStore) or an existing OpenFeature `provider`');
  }
  if (hasStore && !isFlagStore(options.store) && (typeof options.store !== 'object' || (options.store as RedisFlagStoreOptions).redis === undefined)) {
    fail('`store` must be a FlagStore (e.g. new MemoryFlagStore(...)) or RedisFlagStore options with `redis`');
  }
  if (hasProvider && typeof (options.provider as Provider).resolveBooleanEvaluation !== 'function') {
    fail('`provider` must be an OpenFeature server provider');
  }
  if (options.readyTimeoutMs !== undefined && !(Number.isFinite(options.readyTimeoutMs) && options.readyTimeoutMs > 0)) {
    fail(`readyTimeoutMs must be a positive number of milliseconds, got ${JSON.stringify(options.readyTimeoutMs)}`);
  }
  if (options.domain !== undefined && (typeof options.domain !== 'string' || options.domain === '')) fail('domain must be a non-empty string');
  if (options.transactionContext !== undefined && typeof options.transactionContext !== 'boolean') fail('transactionContext must be a boolean');
  if (options.logger !== undefined && typeof options.logger?.warn !== 'function') fail('logger must have a warn(message) method');
  if (options.outcomes !== undefined && (typeof options.outcomes?.sink?.recordRequest !== 'function' || typeof options.outcomes.sink.recordEvent !== 'function')) {
    fail('outcomes.sink must be an OutcomeRecorder (from @rollgate/rollouts): { recordRequest, recordEvent }');
  }
  if (options.identity !== undefined) {
    if (!isIdentityDefinition(options.identity)) fail('identity must be the object defineIdentity({ jwt, claims, … }) returns; or give jwt / getIdentity / claims here instead');
    const beside = IDENTITY_FIELDS.filter((name) => options[name] !== undefined);
    if (beside.length > 0) {
      fail(`give either \`identity\` (a shared definition) or ${beside.map((n) => `\`${n}\``).join(', ')}, not both: two copies of the identity config could map the same token differently`);
    }
  } else if (!options.jwt && !options.getIdentity) {
    fail('give `jwt` (verify a Bearer token) or `getIdentity` (use your auth, e.g. req => req.user): guards and OFREP need to know the caller');
  }
  const ofrep = options.ofrep;
  if (ofrep !== undefined) {
    if (!ofrep || typeof ofrep !== 'object') fail('ofrep must be an object (use {} for the defaults)');
    if (ofrep.path !== undefined && typeof ofrep.path !== 'string') fail('ofrep.path must be a string');
    parseBodyLimit(ofrep.bodyLimit);
    if (ofrep.cors !== undefined && (!Array.isArray(ofrep.cors?.origins) || ofrep.cors.origins.some((o) => typeof o !== 'string' || o === '*'))) {
      fail("ofrep.cors.origins must be an array of exact origins such as 'https://app.example' ('*' is refused: responses are per user)");
    }
    if (ofrep.stream !== undefined && ofrep.stream !== false && typeof ofrep.stream !== 'object') fail('ofrep.stream must be false or ChangeStream options');
    if (ofrep.tracking !== undefined) {
      if (!ofrep.tracking || typeof ofrep.tracking !== 'object') fail("ofrep.tracking must be an object: { trackedEvents: ['checkout.completed'], ... }");
      if (!options.outcomes) fail('ofrep.tracking needs `outcomes: { sink }` (an OutcomeRecorder from @rollgate/rollouts) to count the events in');
    }
    if (ofrep.decorators !== undefined && (!Array.isArray(ofrep.decorators) || ofrep.decorators.some((d) => typeof d !== 'function'))) {
      fail('ofrep.decorators must be an array of class decorators');
    }
  }
  const admin = options.admin;
  if (admin !== undefined) {
    if (!admin || typeof admin !== 'object') fail('admin must be an object: { authorize(identity), path? }');
    if (typeof admin.authorize !== 'function') {
      fail('admin.authorize(identity) is required; without it nobody may change flags (e.g. who => Array.isArray(who.context.roles) && who.context.roles.includes(\'flag-admin\'))');
    }
    if (!hasStore) fail('admin needs `store`: it writes through the store\'s one write path (an existing `provider` gives it none)');
    if (admin.path !== undefined && typeof admin.path !== 'string') fail('admin.path must be a string');
    parseBodyLimit(admin.bodyLimit, 'admin.bodyLimit', ADMIN_BODY_LIMIT);
    if (admin.decorators !== undefined && (!Array.isArray(admin.decorators) || admin.decorators.some((d) => typeof d !== 'function'))) {
      fail('admin.decorators must be an array of class decorators');
    }
    checkDashboardOption(admin.dashboard);
  }
}

function checkDashboardOption(dashboard: unknown): void {
  if (dashboard !== undefined && typeof dashboard !== 'boolean' && (dashboard === null || typeof dashboard !== 'object' || Array.isArray(dashboard))) {
    fail('admin.dashboard must be true, false or { path?, dir? }');
  }
}

/** The options that define the identity when no shared `identity` is given. */
const IDENTITY_FIELDS = ['jwt', 'getIdentity', 'claims', 'enrich', 'maxHeaderLength'] as const;

/** The admin API's default body limit, as `@rollgate/express`'s adminRouter. */
export const ADMIN_BODY_LIMIT = 256 * 1024;

export function ofrepRegistration(ofrep: boolean | Pick<RollgateOfrepOptions, 'path' | 'decorators'> | undefined): OfrepRegistration | undefined {
  return controllerRegistration('ofrep', ofrep);
}

export function adminRegistration(admin: boolean | Pick<RollgateAdminOptions, 'path' | 'decorators' | 'dashboard'> | undefined): AdminRegistration | undefined {
  const registration = controllerRegistration('admin', admin);
  if (!registration || typeof admin !== 'object' || admin === null) return registration;
  checkDashboardOption(admin.dashboard);
  return admin.dashboard === undefined || admin.dashboard === false ? registration : { ...registration, dashboard: admin.dashboard };
}

function controllerRegistration(name: 'ofrep' | 'admin', given: boolean | { path?: string; decorators?: readonly ClassDecorator[] } | undefined): ControllerRegistration | undefined {
  if (given === undefined || given === false) return undefined;
  const value = given === true ? {} : given;
  if (typeof value !== 'object' || value === null) fail(`forRootAsync: ${name} must be true or { path?, decorators? }`);
  if (value.path !== undefined && typeof value.path !== 'string') fail(`${name}.path must be a string`);
  if (value.decorators !== undefined && (!Array.isArray(value.decorators) || value.decorators.some((d) => typeof d !== 'function'))) {
    fail(`${name}.decorators must be an array of class decorators`);
  }
  return { path: value.path ?? '', decorators: [...(value.decorators ?? [])] };
}

/** forRootAsync: the factory's `ofrep` must agree with what was registered when the module was defined. */
export function checkOfrepAgainstRegistration(options: RollgateModuleOptions, registered: OfrepRegistration | undefined): void {
  if (options.ofrep !== undefined && !registered) {
    fail('the options contain `ofrep`, but the OFREP controller is registered when the module is defined: add `ofrep: true` (or `{ path }`) to forRootAsync({ ... }) itself');
  }
  if (registered && options.ofrep?.path !== undefined && (options.ofrep.path ?? '') !== registered.path) {
    fail(`ofrep.path from the factory (${JSON.stringify(options.ofrep.path)}) differs from forRootAsync's ofrep.path (${JSON.stringify(registered.path)}); give it in forRootAsync only`);
  }
}

/** forRootAsync: the factory's `admin` must agree with what was registered when the module was defined. */
export function checkAdminAgainstRegistration(options: RollgateModuleOptions, registered: AdminRegistration | undefined): void {
  if (options.admin !== undefined && !registered) {
    fail('the options contain `admin`, but the admin controller is registered when the module is defined: add `admin: true` (or `{ path }`) to forRootAsync({ ... }) itself');
  }
  if (registered && options.admin === undefined) {
    fail('forRootAsync registers the admin API, but the factory returned no `admin: { authorize(identity) }`; without it nobody may change flags');
  }
  if (registered && options.admin?.path !== undefined && options.admin.path !== registered.path) {
    fail(`admin.path from the factory (${JSON.stringify(options.admin.path)}) differs from forRootAsync's admin.path (${JSON.stringify(registered.path)}); give it in forRootAsync only`);
  }
  const dashboard = options.admin?.dashboard;
  if (registered && dashboard !== undefined && JSON.stringify(dashboard || undefined) !== JSON.stringify(registered.dashboard)) {
    fail(`admin.dashboard from the factory (${JSON.stringify(dashboard)}) differs from forRootAsync's admin.dashboard (${JSON.stringify(registered.dashboard ?? false)}); its controller is registered when the module is defined: give it in forRootAsync only`);
  }
}
