import { Module, type DynamicModule } from '@nestjs/common';
import type { FlagStore } from '@rollgate/redis';
import { RollgateModule } from '@rollgate/nest';
import { BOOKINGS_ENRICHMENT } from './bookings';
import { DemoAdminController } from './demo-admin.controller';
import { DemoLoginController } from './demo-login.controller';
import { DemoRuntime } from './demo-runtime';
import { DEMO_JWT } from './demo-users';
import { DemoGateway } from './gateway';
import { PaymentsController } from './payments.controller';

/**
 * The events endpoint: `checkout.completed` (the page's startTask('checkout'), with the ms it took)
 * is the one tracked name; page views, error reports and feedback are built in. The process-wide
 * budget is above the default (1,000 events/s) because the simulated customers send theirs here
 * too: up to 500 payments/s, each with a page view and a completion or an error.
 */
export const TRACKING = { trackedEvents: ['checkout.completed'], perProcess: { burst: 10_000, perSecond: 2_000 } } as const;

@Module({})
export class AppModule {
  /** The booking API over `store` (Redis or in-memory, chosen at start-up). */
  static register(store: FlagStore, demo: DemoRuntime, options: { readyTimeoutMs?: number } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        RollgateModule.forRoot({
          store, // ours: demo.ts closes it after the app
          ...options, // readyTimeoutMs: how long start-up waits for the flags (5 s by default)
          jwt: DEMO_JWT, // identity: sub → targetingKey, roles, tenant (the defaults)
          // behaviour, from the app's data (never the token or the browser): bookingsThisMonth,
          // which the `busy-agents` segment reads — for @RequireFeature and OFREP alike
          enrich: BOOKINGS_ENRICHMENT,
          // POST /ofrep/v1/evaluate/flags + the SSE change stream, for the React UI; with Redis also
          // POST /rollgate/v1/events: what users live through (page views, uncaught errors, feedback
          // about a flag, time to complete a checkout), counted in the arm the server serves them.
          ofrep: demo.guarded ? { tracking: TRACKING } : {},
          // the admin API, and the dashboard at /rollgate/ (its page is public; every call it makes is authorized here)
          admin: { authorize: (who) => Array.isArray(who.context.roles) && who.context.roles.includes('admin'), dashboard: true },
          // With Redis: every request a guard let in or @FeatureValue evaluated counts (5xx, latency)
          // in the arm of the variant it was served — what the rollout controller decides on.
          ...(demo.guarded ? { outcomes: { sink: demo.guarded.recorder } } : {}),
        }),
      ],
      controllers: [DemoLoginController, DemoAdminController, PaymentsController],
      providers: [
        { provide: DemoRuntime, useValue: demo },
        { provide: DemoGateway, useValue: demo.gateway },
      ],
    };
  }
}
