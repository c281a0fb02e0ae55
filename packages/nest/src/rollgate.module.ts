import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { ConfigError } from '@rollgate/redis';
import { EvaluationContextInterceptor } from './evaluation-context.interceptor';
import { adminControllerFor } from './admin.controller';
import { dashboardControllerFor } from './dashboard.controller';
import { ofrepControllerFor } from './ofrep.controller';
import {
  adminRegistration,
  ofrepRegistration,
  validateModuleOptions,
  type AdminRegistration,
  type OfrepRegistration,
  type RollgateModuleAsyncOptions,
  type RollgateModuleOptions,
} from './rollgate-module-options';
import { RollgateRuntime } from './rollgate.runtime';
import { FEATURE_CLIENT, ROLLGATE_MODULE_OPTIONS, ROLLGATE_PROVIDER, ROLLGATE_RUNTIME, ROLLGATE_STORE } from './tokens';

/**
 * Registers the Rollgate OpenFeature provider (waiting a bounded time for it), the identity used
 * by `@RequireFeature` / `@FeatureValue` / OFREP, the request's transaction context, and
 * optionally the OFREP and admin API controllers. Closes what it created when the application shuts down.
 */
@Module({})
export class RollgateModule {
  static forRoot(options: RollgateModuleOptions): DynamicModule {
    validateModuleOptions(options); // fail where the module is defined, not at first request
    const ofrep = options.ofrep ? ofrepRegistration({ path: options.ofrep.path ?? '', decorators: options.ofrep.decorators ?? [] }) : undefined;
    const admin = options.admin ? adminRegistration({ path: options.admin.path ?? '', decorators: options.admin.decorators ?? [], ...(options.admin.dashboard !== undefined ? { dashboard: options.admin.dashboard } : {}) }) : undefined;
    return define(options.global ?? true, [], { provide: ROLLGATE_MODULE_OPTIONS, useValue: options }, ofrep, admin);
  }

  static forRootAsync(options: RollgateModuleAsyncOptions): DynamicModule {
    if (!options || typeof options.useFactory !== 'function') {
      throw new ConfigError('RollgateModule.forRootAsync: give useFactory (and inject / imports for its dependencies) (see docs/nest.md)');
    }
    const ofrep = ofrepRegistration(options.ofrep);
    const admin = adminRegistration(options.admin);
    const optionsProvider: Provider = { provide: ROLLGATE_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] };
    return define(options.global ?? true, options.imports ?? [], optionsProvider, ofrep, admin);
  }
}

function define(
  global: boolean,
  imports: NonNullable<DynamicModule['imports']>,
  optionsProvider: Provider,
  ofrep: OfrepRegistration | undefined,
  admin: AdminRegistration | undefined,
): DynamicModule {
  return {
    module: RollgateModule,
    global,
    imports,
    controllers: [...(ofrep ? [ofrepControllerFor(ofrep)] : []), ...(admin ? [adminControllerFor(admin)] : []), ...(admin?.dashboard ? [dashboardControllerFor(admin)] : [])],
    providers: [
      optionsProvider,
      { provide: ROLLGATE_RUNTIME, useFactory: (opts: RollgateModuleOptions) => RollgateRuntime.start(opts, ofrep, admin), inject: [ROLLGATE_MODULE_OPTIONS] },
      { provide: ROLLGATE_PROVIDER, useFactory: (rt: RollgateRuntime) => rt.provider, inject: [ROLLGATE_RUNTIME] },
      { provide: ROLLGATE_STORE, useFactory: (rt: RollgateRuntime) => rt.store ?? null, inject: [ROLLGATE_RUNTIME] },
      { provide: FEATURE_CLIENT, useFactory: (rt: RollgateRuntime) => rt.client, inject: [ROLLGATE_RUNTIME] },
      { provide: APP_INTERCEPTOR, useClass: EvaluationContextInterceptor },
    ],
    exports: [ROLLGATE_MODULE_OPTIONS, ROLLGATE_RUNTIME, ROLLGATE_PROVIDER, ROLLGATE_STORE, FEATURE_CLIENT],
  };
}
