import { Body, Controller, HttpCode, HttpException, Inject, Post, Req, Res } from '@nestjs/common';
import { FeatureValue, getRequestIdentity, IdentityRequiredException, RequireFeature } from '@rollgate/nest';
import { DemoGateway, PaymentFailedError, type PaymentFlow } from './gateway';

interface PaymentBody {
  /** A sandbox card token (see gateway.ts); none: a card that pays. */
  card?: unknown;
}

@Controller('payments')
export class PaymentsController {
  constructor(@Inject(DemoGateway) private readonly gateway: DemoGateway) {}

  /** The risky feature: the guard answers 401 / 403 / 503 before this runs unless fast-payment is on for the caller. */
  @Post('fast')
  @HttpCode(200)
  @RequireFeature('fast-payment')
  async fast(@Req() req: object, @Body() body: PaymentBody | undefined) {
    await this.charge('fast', body);
    return { paid: true, flow: 'fast', by: getRequestIdentity(req)!.subject };
  }

  /**
   * The classic flow: any signed-in user. It evaluates fast-payment too (@FeatureValue), so with
   * outcomes recorded its requests count in the caller's arm: the control of a guarded rollout.
   */
  @Post()
  @HttpCode(200)
  async classic(
    @Req() req: object,
    @Res({ passthrough: true }) res: { setHeader(name: string, value: string): unknown },
    @Body() body: PaymentBody | undefined,
    @FeatureValue('fast-payment', false) _fastPayment: boolean,
  ) {
    // RollgateModule identifies every caller it can (for the transaction context); nobody → 401
    const who = getRequestIdentity(req);
    if (!who) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new IdentityRequiredException();
    }
    await this.charge('classic', body);
    return { paid: true, flow: 'classic', by: who.subject };
  }

  /** A failed payment is a 502: counted as an error in the caller's arm. */
  private async charge(flow: PaymentFlow, body: PaymentBody | undefined): Promise<void> {
    try {
      await this.gateway.charge(flow, typeof body?.card === 'string' ? body.card : undefined);
    } catch (e) {
      if (!(e instanceof PaymentFailedError)) throw e;
      throw new HttpException({ error: 'payment_failed', reason: e.why, message: e.message }, 502);
    }
  }
}
