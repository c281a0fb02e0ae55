import 'reflect-metadata';
import {
  Body,
  Controller,
  Get,
  HttpException,
  Injectable,
  Module,
  Post,
  Query,
  Req,
  UnauthorizedException,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { OpenFeature, ProviderEvents, type Client } from '@openfeature/server-sdk';
import type { RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { FeatureValue, InjectFeatureClient, RequireFeature, RequireFeatureGuard, RollgateModule, ROLLGATE_PROVIDER, getRequestIdentity, type RollgateModuleOptions } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { admin, bearer, customer, jwtOptions, nextEvent, recordingLogger, seed, token, users, vipAgent } from '../../server/test/support/pilot-scenario';

// @RequireFeature end to end: Nest 11, a real redis-server, a real provider, real HTTP.

let handlerCalls = 0;
let interceptorCalls = 0;
let pipeCalls = 0;
const ran = () => {
  handlerCalls++;
  return { ok: true };
};

/** Stands in for passport: sets req.user from a header, or rejects with its own 401. */
@Injectable()
class FakeAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown }>();
    const user = req.headers['x-test-user'];
    if (!user) throw new UnauthorizedException('auth guard said no');
    req.user = JSON.parse(user) as unknown;
    return true;
  }
}

@Injectable()
class CountingInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler) {
    interceptorCalls++;
    return next.handle();
  }
}

@Injectable()
class CountingPipe implements PipeTransform {
  transform(value: unknown) {
    pipeCalls++;
    return value;
  }
}

@Controller()
class BookingController {
  constructor(@InjectFeatureClient() private readonly flags: Client) {}

  @Post('payments/fast')
  @RequireFeature('fast-payment')
  fast() {
    return ran();
  }

  @Post('hidden')
  @RequireFeature('fast-payment', { hide: true })
  hidden() {
    return ran();
  }

  @Get('checkout')
  @RequireFeature('checkout-variant', { expected: 'fast' })
  checkout() {
    return ran();
  }

  @Get('seats')
  @RequireFeature('max-seats', { expected: 9 })
  seats() {
    return ran();
  }

  @Get('any')
  @RequireFeature(['admin-tools', 'fast-payment'], { mode: 'any' })
  any() {
    return ran();
  }

  @Get('all')
  @RequireFeature(['admin-tools', 'fast-payment'], { mode: 'all' })
  all() {
    return ran();
  }

  @Get('stacked')
  @RequireFeature('fast-payment')
  @RequireFeature('checkout-variant', { expected: 'fast' })
  stacked() {
    return ran();
  }

  @Get('missing-flag')
  @RequireFeature('does-not-exist')
  missing() {
    return ran();
  }

  @Get('mistyped')
  @RequireFeature('checkout-variant') // a string flag checked as boolean
  mistyped() {
    return ran();
  }

  @Get('custom')
  @RequireFeature('admin-tools', { exceptionFactory: (d) => new HttpException({ error: 'upgrade_required', flag: d.flagKey }, 402) })
  custom() {
    return ran();
  }

  @Post('before-pipes')
  @UseInterceptors(CountingInterceptor)
  @RequireFeature('admin-tools')
  beforePipes(@Body(CountingPipe) _body: unknown, @Query('x', CountingPipe) _x: unknown) {
    return ran();
  }

  @Get('value')
  value(@FeatureValue('checkout-variant', 'classic') variant: string, @FeatureValue('fast-payment', false) fast: boolean, @FeatureValue('max-seats', 1) seats: number) {
    return { variant, fast, seats };
  }

  @Get('implicit')
  async implicit() {
    // no context passed: the caller comes from the transaction context
    return { fast: await this.flags.getBooleanValue('fast-payment', false), global: await OpenFeature.getClient().getStringValue('checkout-variant', 'none') };
  }

  @Get('identity')
  @RequireFeature('fast-payment')
  identity(@Body() _b: unknown, @Query() _q: unknown) {
    return ran();
  }

  @Get('open')
  open() {
    return ran();
  }

  @Get('whoami')
  @RequireFeature('fast-payment')
  whoami(@Req() req: object) {
    const who = getRequestIdentity(req);
    return { subject: who?.subject, context: who?.context };
  }
}

/** The app's own auth (passport-style) beside @RequireFeature, in every order people write it. */
@Controller('auth')
class AuthOrderController {
  @Get('auth-above')
  @UseGuards(FakeAuthGuard)
  @RequireFeature('fast-payment')
  above() {
    return ran();
  }

  @Get('auth-below')
  @RequireFeature('fast-payment')
  @UseGuards(FakeAuthGuard)
  below() {
    return ran();
  }
}

@Controller('class-auth')
@UseGuards(FakeAuthGuard)
class ClassAuthController {
  @Get()
  @RequireFeature('fast-payment')
  get() {
    return ran();
  }
}

@Controller('class-feature')
@RequireFeature('fast-payment')
class ClassFeatureController {
  @Get()
  plain() {
    return ran();
  }

  @Get('admin')
  @UseGuards(FakeAuthGuard)
  @RequireFeature('admin-tools')
  adminOnly() {
    return ran();
  }
}

/** A feature module that does not import RollgateModule: the module is global by default. */
@Module({ controllers: [AuthOrderController, ClassAuthController, ClassFeatureController], providers: [FakeAuthGuard] })
class FeatureModule {}

let redis: TestRedis;
let writer: RedisFlagStore;
let app: INestApplication;
let provider: RollgateProvider;
const env = `nest-guard-${process.pid}`;
const logger = recordingLogger();

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
  const options: RollgateModuleOptions = {
    store: { redis: redis.url, env },
    jwt: jwtOptions,
    getIdentity: (req: { user?: unknown }) => req.user,
    logger,
  };
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRoot(options), FeatureModule],
    controllers: [BookingController],
    providers: [CountingInterceptor, CountingPipe],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  provider = app.get(ROLLGATE_PROVIDER);
});

afterAll(async () => {
  await app?.close();
  await writer?.close();
  await redis?.stop();
});

beforeEach(() => {
  handlerCalls = 0;
  interceptorCalls = 0;
  pipeCalls = 0;
});

const http = () => request(app.getHttpServer());

describe('@RequireFeature', () => {
  it('lets pilot users through by role and by tenant, and refuses everyone else before the handler', async () => {
    await http().post('/payments/fast').set(bearer(admin)).expect(201, { ok: true }); // role admin
    await http().post('/payments/fast').set(bearer(vipAgent)).expect(201); // tenant atlas (vip-agencies)
    expect(handlerCalls).toBe(2);
    const denied = await http().post('/payments/fast').set(bearer(customer)).expect(403);
    expect(denied.body).toEqual({ error: 'feature_not_enabled' });
    expect(denied.headers['cache-control']).toBe('no-store');
    expect(handlerCalls).toBe(2);
  });

  it('answers 401 with WWW-Authenticate when the caller cannot be identified', async () => {
    const noneToken = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'ada', roles: ['admin'], exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url')}.`;
    for (const headers of [{}, { Authorization: 'Bearer abc' }, bearer(noneToken), bearer(token(users.admin, { expiresIn: -60 })), bearer(token(users.admin, { audience: 'other' }))]) {
      const res = await http().post('/payments/fast').set(headers).expect(401);
      expect(res.body).toEqual({ error: 'unauthorized' });
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.headers['cache-control']).toBe('no-store');
    }
    expect(handlerCalls).toBe(0);
  });

  it('hides the route with hide: true, answering exactly as Nest does for a route that does not exist', async () => {
    const hidden = await http().post('/hidden').set(bearer(customer)).expect(404);
    const unknown = await http().post('/no-such-route').set(bearer(customer)).expect(404);
    expect(hidden.body).toEqual({ ...unknown.body, message: 'Cannot POST /hidden' });
    expect(unknown.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'Cannot POST /no-such-route' });
    await http().post('/hidden').set(bearer(admin)).expect(201);
    expect(handlerCalls).toBe(1);
  });

  it('checks the expected value of string and number flags', async () => {
    await http().get('/checkout').set(bearer(vipAgent)).expect(200);
    await http().get('/checkout').set(bearer(customer)).expect(403);
    await http().get('/seats').set(bearer(admin)).expect(200);
    await http().get('/seats').set(bearer(customer)).expect(403);
    expect(handlerCalls).toBe(2);
  });

  it("mode 'any' needs one flag, mode 'all' every flag; stacked decorators all apply", async () => {
    await http().get('/any').set(bearer(vipAgent)).expect(200); // fast-payment on, admin-tools off
    await http().get('/any').set(bearer(customer)).expect(403);
    await http().get('/all').set(bearer(vipAgent)).expect(403);
    await http().get('/all').set(bearer(admin)).expect(200);
    await http().get('/stacked').set(bearer(vipAgent)).expect(200); // fast-payment and checkout=fast
    await http().get('/stacked').set(bearer(admin)).expect(403); // fast-payment, but checkout classic
    expect(handlerCalls).toBe(3);
  });

  it('fails closed on a flag that does not exist (FLAG_NOT_FOUND) or has the wrong type', async () => {
    await http().get('/missing-flag').set(bearer(admin)).expect(403, { error: 'feature_not_enabled' });
    await http().get('/mistyped').set(bearer(vipAgent)).expect(403);
    expect(handlerCalls).toBe(0);
    expect(logger.lines.some((l) => l.includes('does-not-exist: FLAG_NOT_FOUND'))).toBe(true);
  });

  it('uses the exceptionFactory for a denial', async () => {
    await http().get('/custom').set(bearer(customer)).expect(402, { error: 'upgrade_required', flag: 'admin-tools' });
    await http().get('/custom').set(bearer(admin)).expect(200);
  });

  it('runs before interceptors and pipes: a denied request reaches neither', async () => {
    await http().post('/before-pipes?x=1').set(bearer(customer)).send({ a: 1 }).expect(403);
    expect([interceptorCalls, pipeCalls, handlerCalls]).toEqual([0, 0, 0]);
    await http().post('/before-pipes?x=1').set(bearer(admin)).send({ a: 1 }).expect(201);
    expect([interceptorCalls, pipeCalls, handlerCalls]).toEqual([1, 2, 1]);
  });

  it('ignores tenant and role sent by the client in headers, query or body', async () => {
    await http()
      .get('/identity?tenant=atlas&roles=admin')
      .set(bearer(customer))
      .set('X-Tenant', 'atlas')
      .set('X-Role', 'admin')
      .send({ tenant: 'atlas', roles: ['admin'], context: { tenant: 'atlas' } })
      .expect(403);
    expect(handlerCalls).toBe(0);
  });

  it('follows a flag flipped in Redis on the next request, without a restart', async () => {
    const off = nextEvent(provider, ProviderEvents.ConfigurationChanged);
    await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', reason: 'kill switch' });
    await off;
    await http().post('/payments/fast').set(bearer(admin)).expect(403);
    const on = nextEvent(provider, ProviderEvents.ConfigurationChanged);
    await writer.patchFlag('fast-payment', { state: 'ENABLED' }, { actor: 'ops' });
    await on;
    await http().post('/payments/fast').set(bearer(admin)).expect(201);
  });

  it('exposes the identity it established (allow-listed claims only) to the handler', async () => {
    const res = await http().get('/whoami').set(bearer(token({ ...users.vipAgent, email: 'bo@atlas.test', admin: true }))).expect(200);
    expect(res.body).toEqual({ subject: 'bo', context: { targetingKey: 'bo', roles: ['agent'], tenant: 'atlas' } });
  });

  it('leaves handlers without the decorator alone', async () => {
    await http().get('/open').expect(200, { ok: true });
  });
});

describe('guard order with the app’s own auth guard (req.user)', () => {
  const as = (user: object) => ({ 'x-test-user': JSON.stringify(user) });

  it.each(['/auth/auth-above', '/auth/auth-below', '/class-auth'])('%s: an auth guard that rejects answers first (401, never 403)', async (path) => {
    const res = await http().get(path).expect(401);
    expect(res.body).toMatchObject({ message: 'auth guard said no' });
    expect(handlerCalls).toBe(0);
  });

  it.each(['/auth/auth-above', '/auth/auth-below', '/class-auth'])('%s: the feature is checked for req.user, whatever the decorator order', async (path) => {
    await http().get(path).set(as(users.admin)).expect(200);
    await http().get(path).set(as(users.customer)).expect(403, { error: 'feature_not_enabled' });
    // req.user wins over a token for someone else
    await http().get(path).set(as(users.customer)).set(bearer(admin)).expect(403);
    expect(handlerCalls).toBe(1);
  });

  it('a class-level @RequireFeature and a handler-level one both apply, after the handler’s auth guard', async () => {
    await http().get('/class-feature').set(bearer(vipAgent)).expect(200);
    await http().get('/class-feature').set(bearer(customer)).expect(403);
    await http().get('/class-feature/admin').expect(401, { message: 'auth guard said no', error: 'Unauthorized', statusCode: 401 });
    await http().get('/class-feature/admin').set(as(users.admin)).expect(200);
    await http().get('/class-feature/admin').set(as(users.vipAgent)).expect(403); // fast-payment yes, admin-tools no
    await http().get('/class-feature/admin').set(as(users.customer)).expect(403);
    expect(handlerCalls).toBe(2);
  });
});

describe('evaluation for the handler', () => {
  it('@FeatureValue gives the value for the caller, by the type of the default', async () => {
    await http().get('/value').set(bearer(vipAgent)).expect(200, { variant: 'fast', fast: true, seats: 2 });
    await http().get('/value').set(bearer(admin)).expect(200, { variant: 'classic', fast: true, seats: 9 });
    // anonymous: evaluated without identity
    await http().get('/value').expect(200, { variant: 'classic', fast: false, seats: 2 });
  });

  it('runs the handler in the transaction context: the injected client and OpenFeature.getClient() target the caller', async () => {
    await http().get('/implicit').set(bearer(vipAgent)).expect(200, { fast: true, global: 'fast' });
    await http().get('/implicit').set(bearer(customer)).expect(200, { fast: false, global: 'classic' });
    await http().get('/implicit').expect(200, { fast: false, global: 'classic' });
  });

  it('does not let a __proto__ claim grant a role', async () => {
    const { createHmac } = await import('node:crypto');
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 300;
    const body = Buffer.from(`{"sub":"mallory","tenant":"smallco","iss":"${jwtOptions.issuer}","aud":"${jwtOptions.audience}","exp":${exp},"__proto__":{"roles":["admin"],"tenant":"atlas"}}`).toString('base64url');
    const forged = `${header}.${body}.${createHmac('sha256', jwtOptions.secret).update(`${header}.${body}`).digest('base64url')}`;
    await http().post('/payments/fast').set(bearer(forged)).expect(403);
    await http().get('/implicit').set(bearer(forged)).expect(200, { fast: false, global: 'classic' });
  });
});

describe('as a global guard (APP_GUARD)', () => {
  let globalApp: INestApplication;
  let globalHandlerCalls = 0;

  /** A global auth guard registered after the feature guard: auth must still answer first. */
  @Injectable()
  class GlobalAuthGuard implements CanActivate {
    canActivate(context: ExecutionContext): boolean {
      const req = context.switchToHttp().getRequest<{ headers: Record<string, string>; url: string }>();
      if (req.url.startsWith('/public') || req.headers['x-pass']) return true;
      throw new UnauthorizedException('global auth said no');
    }
  }

  @Controller()
  class GlobalController {
    @Get('public/open')
    open() {
      globalHandlerCalls++;
      return { open: true };
    }

    @Get('gated')
    @RequireFeature('admin-tools')
    gated() {
      globalHandlerCalls++;
      return { gated: true };
    }

    @Get('public/gated')
    @RequireFeature('admin-tools')
    publicGated() {
      globalHandlerCalls++;
      return { gated: true };
    }
  }

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RollgateModule.forRoot({ store: { redis: redis.url, env }, jwt: jwtOptions, domain: 'global-guard', logger: recordingLogger() })],
      controllers: [GlobalController],
      providers: [
        { provide: APP_GUARD, useClass: RequireFeatureGuard },
        { provide: APP_GUARD, useClass: GlobalAuthGuard },
      ],
    }).compile();
    globalApp = moduleRef.createNestApplication({ logger: false });
    await globalApp.init();
  });
  afterAll(async () => {
    await globalApp?.close();
  });

  it('leaves handlers without the decorator untouched (no identity needed)', async () => {
    await request(globalApp.getHttpServer()).get('/public/open').expect(200, { open: true });
    expect(globalHandlerCalls).toBe(1);
  });

  it('guards decorated handlers, after the global auth guard registered behind it', async () => {
    const server = globalApp.getHttpServer();
    await request(server).get('/gated').set(bearer(admin)).expect(401, { message: 'global auth said no', error: 'Unauthorized', statusCode: 401 });
    // refused by auth, not by the feature: the global feature guard did not decide before it
    await request(server).get('/gated').set(bearer(customer)).expect(401, { message: 'global auth said no', error: 'Unauthorized', statusCode: 401 });
    await request(server).get('/gated').set('x-pass', '1').set(bearer(admin)).expect(200, { gated: true });
    await request(server).get('/gated').set('x-pass', '1').set(bearer(customer)).expect(403, { error: 'feature_not_enabled' });
    await request(server).get('/public/gated').expect(401, { error: 'unauthorized' });
    await request(server).get('/public/gated').set(bearer(admin)).expect(200);
    expect(globalHandlerCalls).toBe(3);
  });
});

describe('declaration errors surface where the decorator is written', () => {
  it('refuses bad options with a message naming the option', () => {
    expect(() => RequireFeature([])).toThrow('@RequireFeature: give a flag key');
    expect(() => RequireFeature('x', { mode: 'some' as never })).toThrow("options.mode must be 'all' or 'any'");
    expect(() => RequireFeature('x', { whenUnavailable: 'open' as never })).toThrow("options.whenUnavailable must be 'unavailable' or 'deny'");
    expect(() => RequireFeature('x', { retryAfterSec: -1 })).toThrow('options.retryAfterSec');
    expect(() => FeatureValue('', false)).toThrow('@FeatureValue: give a flag key');
  });
});
