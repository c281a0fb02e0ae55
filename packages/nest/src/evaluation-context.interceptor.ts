import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { OpenFeature } from '@openfeature/server-sdk';
import { IdentityError, withExposureScope, type Exposure, type Identity } from '@rollgate/server';
import { from, mergeMap, Observable } from 'rxjs';
import type { RollgateRuntime } from './rollgate.runtime';
import { ROLLGATE_RUNTIME } from './tokens';

/**
 * Registered globally by RollgateModule. For every HTTP request it tells `@FeatureValue` which
 * app is serving it and, when the caller is identified, runs the handler (and its pipes) inside
 * OpenFeature's transaction context, so evaluations without a context target the caller.
 * It never refuses a request: access control is the guard's job.
 */
@Injectable()
export class EvaluationContextInterceptor implements NestInterceptor {
  constructor(@Inject(ROLLGATE_RUNTIME) private readonly runtime: RollgateRuntime) {}

  intercept(context: ExecutionContext, outer: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return outer.handle();
    const req = context.switchToHttp().getRequest<object>();
    this.runtime.attach(req);
    // with outcomes recorded, the handler runs in the request's exposure scope: `recordExposure`
    // and `client.track()` in it count in the request's arms
    const exposures = this.runtime.exposuresOf(req, context.switchToHttp().getResponse());
    const next: CallHandler = exposures ? { handle: () => inScope(exposures, () => outer.handle()) } : outer;
    if (!this.runtime.transactionContext) return next.handle();
    const identified = this.runtime.identify(req).then(
      (who) => who,
      (err: unknown) => {
        // anonymous (public routes), or a bug in getIdentity: run without a caller
        if (!(err instanceof IdentityError)) this.runtime.logger.warn(`rollgate: getIdentity threw (${(err as Error)?.message ?? String(err)}); handler runs without a transaction context`);
        return undefined;
      },
    );
    return from(identified).pipe(
      mergeMap((who: Identity | undefined) => {
        if (!who) return next.handle();
        return new Observable<unknown>((subscriber) => {
          let inner: { unsubscribe(): void } | undefined;
          OpenFeature.setTransactionContext({ ...who.context } as never, () => {
            inner = next.handle().subscribe(subscriber);
          });
          return () => inner?.unsubscribe();
        });
      }),
    );
  }
}

/** Subscribes to the handler's observable inside the exposure scope, so the handler runs in it. */
function inScope(exposures: Exposure[], handle: () => Observable<unknown>): Observable<unknown> {
  return new Observable<unknown>((subscriber) => withExposureScope(exposures, () => handle().subscribe(subscriber)));
}
