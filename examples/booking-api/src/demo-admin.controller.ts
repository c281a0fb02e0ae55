import { BadRequestException, Body, Controller, ForbiddenException, Get, HttpCode, Inject, Post, Req, UnauthorizedException } from '@nestjs/common';
import { getRequestIdentity } from '@rollgate/nest';
import { DemoRuntime } from './demo-runtime';
import { CUSTOMERS, GATEWAY_ERROR_SHARE } from './traffic';

/** Default payments per second of the simulated customers. */
export const DEFAULT_TRAFFIC_RATE = 50;

/**
 * The demo's switches, for admins only (role `admin`, as the admin API): the simulated customers'
 * traffic and the fault that makes the fast payment fail. DEMO ONLY — a real service has neither,
 * and the Rollgate dashboard has no business with them: the booking page's admin card shows them.
 *
 *   GET  /demo/status                  the switches, the controller's ticks, the demo plan's spec
 *   POST /demo/traffic {on, ratePerSec?}
 *   POST /demo/fault   {failRate}      0..1: that share of FAST payments answers 502
 */
@Controller('demo')
export class DemoAdminController {
  constructor(@Inject(DemoRuntime) private readonly demo: DemoRuntime) {}

  @Get('status')
  status(@Req() req: object) {
    admin(req);
    return this.view();
  }

  @Post('traffic')
  @HttpCode(200)
  async traffic(@Req() req: object, @Body() body: { on?: unknown; ratePerSec?: unknown } | undefined) {
    admin(req);
    if (typeof body?.on !== 'boolean') throw badRequest('body.on must be true or false');
    if (body.on) {
      const rate = body.ratePerSec === undefined ? DEFAULT_TRAFFIC_RATE : body.ratePerSec;
      if (typeof rate !== 'number' || !(rate > 0 && rate <= 500)) throw badRequest('body.ratePerSec must be a number above 0 and at most 500');
      this.demo.traffic.start(rate);
    } else await this.demo.traffic.stop();
    return this.view();
  }

  @Post('fault')
  @HttpCode(200)
  fault(@Req() req: object, @Body() body: { failRate?: unknown } | undefined) {
    admin(req);
    const rate = body?.failRate;
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) throw badRequest('body.failRate must be a number from 0 to 1 (0 turns the fault off)');
    this.demo.gateway.setFault(rate);
    return this.view();
  }

  private view() {
    const d = this.demo;
    return {
      store: d.store,
      guardedRollouts:
        d.store === 'redis'
          ? { available: true as const, controller: d.guarded!.status, plan: d.plan }
          : { available: false as const, why: 'Guarded rollouts need Redis: outcomes, plans and the controller’s lease live there. This demo runs on the embedded in-memory store; start it with Redis (REDIS_URL) to run a plan.' },
      traffic: { ...d.traffic.status, customers: CUSTOMERS, gatewayErrorShare: GATEWAY_ERROR_SHARE },
      fault: d.gateway.fault,
    };
  }
}

function badRequest(message: string): BadRequestException {
  return new BadRequestException({ error: 'invalid', message });
}

/** Only admins: 401 without a token, 403 for anyone else (as the admin API answers). */
function admin(req: object): void {
  const who = getRequestIdentity(req);
  if (!who) throw new UnauthorizedException({ error: 'unauthorized' });
  const roles = who.context.roles;
  if (!Array.isArray(roles) || !roles.includes('admin')) throw new ForbiddenException({ error: 'forbidden' });
}
