import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Logger, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import { AsyncLocalStorageTransactionContextPropagator, NOOP_PROVIDER, OpenFeature, type Client, type Provider } from '@openfeature/server-sdk';
import { ConfigError, RedisFlagStore, RollgateProvider, StoreUnavailableError, type BaseFlagStore, type FlagStore, type RedisFlagStoreOptions } from '@rollgate/redis';
import {
  AdminApi,
  ChangeStream,
  EventIntake,
  OfrepEvaluator,
  currentExposures,
  defineIdentity,
  type Exposure,
  type Identity,
  type IdentityDefinition,
  type OfrepOptions,
  type OutcomeSink,
} from '@rollgate/server';
import {
  ADMIN_BODY_LIMIT,
  checkAdminAgainstRegistration,
  checkOfrepAgainstRegistration,
  isFlagStore,
  parseBodyLimit,
  validateModuleOptions,
  type AdminRegistration,
  type OfrepRegistration,
  type RollgateLogger,
  type RollgateModuleOptions,
} from './rollgate-module-options';
import { identifyOnce } from './request-identity';

/** What the OFREP controller needs, built once at start-up. */
export interface OfrepRuntime {
  readonly evaluator: OfrepEvaluator;
  readonly stream: ChangeStream | undefined;
  readonly origins: ReadonlySet<string>;
  readonly bodyLimit: number;
  /** The events endpoint, when `ofrep.tracking` is set. */
  readonly tracking: EventIntake | undefined;
}

/** What the admin controller needs, built once at start-up. */
export interface AdminRuntime {
  readonly api: AdminApi;
  readonly bodyLimit: number;
  /** Open event streams (`GET /rollgate/admin/events`): each function ends one. */
  readonly streams: Set<() => void>;
}

type Request = { headers: IncomingHttpHeaders };

const runtimes = new WeakMap<object, RollgateRuntime>();
/** Each request's exposures (what it was served), while outcomes are recorded. */
const exposuresByRequest = new WeakMap<object, Exposure[]>();

/**
 * The module's state: identity resolution, the registered provider and what the module opened.
 * Created by an async factory, so the app waits (boundedly) for the provider before serving.
 */
export class RollgateRuntime implements OnModuleDestroy, OnApplicationShutdown {
  readonly client: Client;
  readonly ofrep: OfrepRuntime | undefined;
  readonly admin: AdminRuntime | undefined;
  private readonly clients = new Map<string | undefined, Client>();
  /** Who is calling, defined once: the guards, the interceptor, OFREP and the admin API all resolve callers here. */
  private readonly identity: IdentityDefinition;
  private readonly outcomes: OutcomeSink | undefined;
  private readonly stopTracking: (() => void) | undefined;
  private closed = false;

  private constructor(
    readonly provider: Provider,
    readonly store: FlagStore | undefined,
    readonly domain: string | undefined,
    readonly logger: RollgateLogger,
    readonly transactionContext: boolean,
    private readonly ownsProvider: boolean,
    private readonly ownsStore: boolean,
    options: RollgateModuleOptions,
  ) {
    this.identity = defineIdentity(options.identity ?? options);
    this.client = this.clientFor(domain);
    this.ofrep = options.ofrep ? createOfrep(provider, options, this.identity) : undefined;
    this.admin = options.admin ? createAdmin(store, options) : undefined;
    this.outcomes = options.outcomes?.sink;
    const sink = this.outcomes;
    if (sink && provider instanceof RollgateProvider) {
      this.stopTracking = provider.onTrack((name, _context, details) => {
        const exposures = currentExposures();
        // details.value (OpenFeature's numeric value of a tracking event) feeds value guards
        if (exposures && exposures.length > 0) sink.recordEvent(name, exposures, typeof details?.value === 'number' ? details.value : undefined);
      });
    }
  }

  /**
   * The list this request's exposures are noted in, when outcomes are recorded (undefined
   * otherwise). Created at the first call, which also arranges for the outcome to be counted when
   * the response ends: latency is measured from there (the first guard or interceptor).
   */
  exposuresOf(request: object, response: unknown): Exposure[] | undefined {
    const sink = this.outcomes;
    if (!sink) return undefined;
    let exposures = exposuresByRequest.get(request);
    if (exposures) return exposures;
    exposures = [];
    exposuresByRequest.set(request, exposures);
    const list = exposures;
    const started = performance.now();
    const res = (response as { raw?: unknown }).raw ?? response; // fastify reply → its raw response
    const events = res as { once?(event: string, fn: () => void): unknown; statusCode?: number };
    events.once?.('finish', () => {
      if (list.length > 0) sink.recordRequest(list, { error: (events.statusCode ?? 0) >= 500, durationMs: performance.now() - started });
    });
    return exposures;
  }

  /** Validates the options, creates what is needed, registers the provider and waits (boundedly) for it. */
  static async start(options: RollgateModuleOptions, ofrep: OfrepRegistration | undefined, admin?: AdminRegistration): Promise<RollgateRuntime> {
    validateModuleOptions(options);
    checkOfrepAgainstRegistration(options, ofrep);
    checkAdminAgainstRegistration(options, admin);
    const effective: RollgateModuleOptions = ofrep && !options.ofrep ? { ...options, ofrep: {} } : options;
    const logger = effective.logger ?? new Logger('Rollgate');
    const readyTimeoutMs = effective.readyTimeoutMs ?? 5000;

    let store: FlagStore | undefined;
    let ownsStore = false;
    let provider: Provider;
    if (effective.provider) {
      provider = effective.provider;
    } else if (isFlagStore(effective.store)) {
      store = effective.store;
      provider = new RollgateProvider({ ...effective.providerOptions, store, initTimeoutMs: readyTimeoutMs });
    } else {
      store = new RedisFlagStore(effective.store as RedisFlagStoreOptions);
      ownsStore = true;
      provider = new RollgateProvider({ ...effective.providerOptions, store, initTimeoutMs: readyTimeoutMs });
    }
    const ownsProvider = !effective.provider;

    let runtime: RollgateRuntime;
    try {
      runtime = new RollgateRuntime(provider, store, effective.domain, logger, effective.transactionContext !== false, ownsProvider, ownsStore, effective);
    } catch (e) {
      if (ownsStore) await store!.close();
      throw e;
    }
    if (runtime.transactionContext) OpenFeature.setTransactionContextPropagator(new AsyncLocalStorageTransactionContextPropagator());
    await runtime.register(readyTimeoutMs);
    return runtime;
  }

  /** The runtime of the app that is handling this request (set by the module's interceptor). */
  static of(request: object): RollgateRuntime | undefined {
    return runtimes.get(request);
  }

  attach(request: object): void {
    runtimes.set(request, this);
  }

  /** The caller of this request, resolved once (getIdentity, then a verified Bearer JWT). Rejects with IdentityError. */
  identify(request: object): Promise<Identity> {
    return identifyOnce(request, () => this.identity.resolve(request as Request));
  }

  clientFor(domain: string | undefined): Client {
    let client = this.clients.get(domain);
    if (!client) {
      client = domain === undefined ? OpenFeature.getClient() : OpenFeature.getClient(domain);
      this.clients.set(domain, client);
    }
    return client;
  }

  /** Ends the SSE streams first: the HTTP server cannot close while they are open. */
  onModuleDestroy(): void {
    this.ofrep?.stream?.close();
    for (const end of [...(this.admin?.streams ?? [])]) end();
  }

  /** Closes the provider and store if the module created them; leaves yours alone. */
  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ofrep?.stream?.close();
    if (this.ownsProvider) {
      const registered = this.domain === undefined ? OpenFeature.getProvider() : OpenFeature.getProvider(this.domain);
      if (registered === this.provider) {
        // unbind first so nothing evaluates against a closed provider
        const unbind = this.domain === undefined ? OpenFeature.setProviderAndWait(NOOP_PROVIDER) : OpenFeature.setProviderAndWait(this.domain, NOOP_PROVIDER);
        await unbind.catch(() => undefined);
      }
      await this.provider.onClose?.();
    }
    this.stopTracking?.();
    if (this.ownsStore) await this.store!.close();
  }

  private async register(readyTimeoutMs: number): Promise<void> {
    const ready = this.domain === undefined ? OpenFeature.setProviderAndWait(this.provider) : OpenFeature.setProviderAndWait(this.domain, this.provider);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
    });
    try {
      await Promise.race([ready, timeout]);
    } catch (e) {
      ready.catch(() => undefined);
      // a Redis the store cannot use: say where and why (never the password), not ioredis' retry internals
      const store = this.store;
      const why =
        store instanceof RedisFlagStore && (e instanceof StoreUnavailableError || (e as Error)?.message === `not ready within ${readyTimeoutMs} ms`)
          ? store.describeUnreachable(e instanceof StoreUnavailableError ? e : undefined)
          : `flag provider "${this.provider.metadata?.name ?? 'unknown'}" is not ready (${(e as Error)?.message ?? String(e)})`;
      this.logger.warn(`rollgate: ${why}; the app starts anyway and @RequireFeature answers 503 until the flags are loaded`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function createOfrep(provider: Provider, options: RollgateModuleOptions, identity: IdentityDefinition): OfrepRuntime {
  const source = provider as Partial<Pick<RollgateProvider, 'snapshot' | 'events'>>;
  if (!source.events || !('snapshot' in source)) {
    throw new ConfigError('RollgateModule: ofrep needs a RollgateProvider (flags are served from its snapshot); give `store`, or a RollgateProvider as `provider`');
  }
  const ofrep = options.ofrep!;
  const evaluatorOptions: OfrepOptions = {
    source: source as Pick<RollgateProvider, 'snapshot'> & Partial<Pick<RollgateProvider, 'health'>>,
    clientAttributes: ofrep.clientAttributes ?? [],
    identityAttributes: identity.ownedNames,
    exposedMetadata: ofrep.exposedMetadata ?? [],
  };
  if (ofrep.clientVisible) evaluatorOptions.clientVisible = ofrep.clientVisible;
  const stream = ofrep.stream === false ? undefined : new ChangeStream({ ...(ofrep.stream ?? {}), events: source.events });
  if (stream) evaluatorOptions.stream = stream; // announces only what browsers can see, paced; its etagSalt goes into the ETag
  const evaluator = new OfrepEvaluator(evaluatorOptions);
  const sink = options.outcomes?.sink;
  if (ofrep.tracking && !sink) throw new ConfigError('RollgateModule: ofrep.tracking needs `outcomes: { sink }` to count the events in (see docs/nest.md)');
  const tracking = ofrep.tracking ? new EventIntake({ ...ofrep.tracking, evaluator, sink: sink! }) : undefined;
  return { evaluator, stream, origins: new Set(ofrep.cors?.origins ?? []), bodyLimit: parseBodyLimit(ofrep.bodyLimit), tracking };
}

function createAdmin(store: FlagStore | undefined, options: RollgateModuleOptions): AdminRuntime {
  const admin = options.admin!;
  const writable = store as Partial<BaseFlagStore> | undefined;
  if (!writable || typeof writable.apply !== 'function' || typeof writable.patchFlag !== 'function' || typeof writable.revert !== 'function' || typeof writable.audit !== 'function') {
    throw new ConfigError('RollgateModule: admin needs a store with the write path (RedisFlagStore options, a RedisFlagStore or a MemoryFlagStore) (see docs/nest.md)');
  }
  return { api: new AdminApi({ store: writable as BaseFlagStore, authorize: admin.authorize }), bodyLimit: parseBodyLimit(admin.bodyLimit, 'admin.bodyLimit', ADMIN_BODY_LIMIT), streams: new Set() };
}
