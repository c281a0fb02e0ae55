import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import type { Provider } from '@openfeature/server-sdk';
import { ConfigError, type FlagStore, type RedisFlagStoreOptions, type RollgateProviderOptions } from '@rollgate/redis';
import type { ChangeStreamOptions, IdentityOptions, OfrepOptions } from '@rollgate/server';

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
   * Class decorators applied to the controller, e.g. your own `@Public()` so that a global auth
   * guard lets the SSE stream through (EventSource sends no Authorization; its ticket is its credential).
   */
  decorators?: readonly ClassDecorator[];
}

/** Receives warnings (provider not ready at boot) and one debug line per refusal. @default Nest's Logger('Rollgate') */
export interface RollgateLogger {
  warn(message: string): void;
  debug?(message: string): void;
}

export interface RollgateModuleOptions extends IdentityOptions {
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
}

/** The controller's static part (route prefix and class decorators). */
export interface OfrepRegistration {
  path: string;
  decorators: readonly ClassDecorator[];
}

const DOCS = 'see docs/nest.md';

function fail(message: string): never {
  throw new ConfigError(`RollgateModule: ${message} (${DOCS})`);
}

export function isFlagStore(value: unknown): value is FlagStore {
  return !!value && typeof (value as FlagStore).load === 'function' && typeof (value as FlagStore).watch === 'function' && typeof (value as FlagStore).close === 'function';
}

/** Bytes from 16384, '16kb', '1mb' or '512b'. */
export function parseBodyLimit(limit: number | string | undefined): number {
  if (limit === undefined) return 16 * 1024;
  if (typeof limit === 'number') {
    if (Number.isInteger(limit) && limit > 0) return limit;
  } else {
    const m = /^\s*(\d+)\s*(b|kb|mb)?\s*$/i.exec(limit);
    if (m) {
      const n = Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 * 1024 } as const)[(m[2]?.toLowerCase() ?? 'b') as 'b' | 'kb' | 'mb'];
      if (n > 0) return n;
    }
  }
  return fail(`ofrep.bodyLimit must be a positive number of bytes or a size such as '16kb', got ${JSON.stringify(limit)}`);
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
  if (!options.jwt && !options.getIdentity) {
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
    if (ofrep.decorators !== undefined && (!Array.isArray(ofrep.decorators) || ofrep.decorators.some((d) => typeof d !== 'function'))) {
      fail('ofrep.decorators must be an array of class decorators');
    }
  }
}

export function ofrepRegistration(ofrep: boolean | Pick<RollgateOfrepOptions, 'path' | 'decorators'> | undefined): OfrepRegistration | undefined {
  if (ofrep === undefined || ofrep === false) return undefined;
  const given = ofrep === true ? {} : ofrep;
  if (typeof given !== 'object' || given === null) fail('forRootAsync: ofrep must be true or { path?, decorators? }');
  if (given.path !== undefined && typeof given.path !== 'string') fail('ofrep.path must be a string');
  if (given.decorators !== undefined && (!Array.isArray(given.decorators) || given.decorators.some((d) => typeof d !== 'function'))) {
    fail('ofrep.decorators must be an array of class decorators');
  }
  return { path: given.path ?? '', decorators: [...(given.decorators ?? [])] };
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
