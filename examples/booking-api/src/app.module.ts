import { Module, type DynamicModule } from '@nestjs/common';
import type { FlagStore } from '@rollgate/redis';
import { RollgateModule } from '@rollgate/nest';
import { DemoLoginController } from './demo-login.controller';
import { DEMO_JWT } from './demo-users';
import { PaymentsController } from './payments.controller';

@Module({})
export class AppModule {
  /** The booking API over `store` (Redis or in-memory, chosen at start-up). */
  static register(store: FlagStore, options: { readyTimeoutMs?: number } = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        RollgateModule.forRoot({
          store, // ours: main.ts closes it after the app
          ...options, // readyTimeoutMs: how long start-up waits for the flags (5 s by default)
          jwt: DEMO_JWT, // identity: sub → targetingKey, roles, tenant (the defaults)
          ofrep: {}, // POST /ofrep/v1/evaluate/flags + the SSE change stream, for the React UI
          admin: { authorize: (who) => Array.isArray(who.context.roles) && who.context.roles.includes('admin') },
        }),
      ],
      controllers: [DemoLoginController, PaymentsController],
    };
  }
}
