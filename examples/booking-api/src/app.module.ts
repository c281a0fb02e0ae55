import { Module, type DynamicModule } from '@nestjs/common';
import type { FlagStore } from '@rollgate/redis';
import { RollgateModule } from '@rollgate/nest';
import { DemoAdminController } from './demo-admin.controller';
import { DemoLoginController } from './demo-login.controller';
import { DemoRuntime } from './demo-runtime';
import { DEMO_JWT } from './demo-users';
import { DemoGateway } from './gateway';
import { PaymentsController } from './payments.controller';

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
          ofrep: {}, // POST /ofrep/v1/evaluate/flags + the SSE change stream, for the React UI
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
