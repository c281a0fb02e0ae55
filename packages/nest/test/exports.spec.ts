import 'reflect-metadata';
import * as nest from '@rollgate/nest';
import type { FeatureRefusal, RequireFeatureOptions, RollgateLogger, RollgateModuleAsyncOptions, RollgateModuleOptions, RollgateOfrepOptions } from '@rollgate/nest';

describe('public API of @rollgate/nest', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(nest).sort()).toEqual([
      'FEATURE_CLIENT',
      'FeatureDeniedException',
      'FeatureUnavailableException',
      'FeatureValue',
      'IdentityRequiredException',
      'InjectFeatureClient',
      'ROLLGATE_MODULE_OPTIONS',
      'ROLLGATE_PROVIDER',
      'ROLLGATE_STORE',
      'RequireFeature',
      'RequireFeatureGuard',
      'RollgateModule',
      'getRequestIdentity',
    ]);
  });

  it('exports the documented types (checked by tsc as part of npm test)', () => {
    const logger: RollgateLogger = { warn: () => undefined };
    const ofrep: RollgateOfrepOptions = { path: 'flags', cors: { origins: ['https://app.example'] }, bodyLimit: '16kb' };
    const options: RollgateModuleOptions = { store: { redis: 'redis://127.0.0.1:6379' }, getIdentity: (req: { user?: unknown }) => req.user, ofrep, logger };
    const async: RollgateModuleAsyncOptions = { useFactory: () => options, ofrep: { path: 'flags' } };
    const guard: RequireFeatureOptions = { mode: 'any', expected: 'fast', hide: true, whenUnavailable: 'deny', exceptionFactory: (d: FeatureRefusal) => new Error(d.reason) };
    expect([async.ofrep, guard.mode]).toEqual([{ path: 'flags' }, 'any']);
  });

  it('exceptions carry stable codes and the bodies the Express adapter sends', () => {
    expect([new nest.FeatureDeniedException().getResponse(), new nest.FeatureDeniedException().code]).toEqual([{ error: 'feature_not_enabled' }, 'ERR_ROLLGATE_FEATURE_DENIED']);
    expect([new nest.FeatureUnavailableException().getStatus(), new nest.FeatureUnavailableException().getResponse()]).toEqual([503, { error: 'feature_decision_unavailable' }]);
    expect([new nest.IdentityRequiredException().getStatus(), new nest.IdentityRequiredException().getResponse()]).toEqual([401, { error: 'unauthorized' }]);
  });
});
