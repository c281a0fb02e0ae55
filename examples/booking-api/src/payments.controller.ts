import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { getRequestIdentity, IdentityRequiredException, RequireFeature } from '@rollgate/nest';

@Controller('payments')
export class PaymentsController {
  /** The risky feature: the guard answers 401 / 403 / 503 before this runs unless fast-payment is on for the caller. */
  @Post('fast')
  @HttpCode(200)
  @RequireFeature('fast-payment')
  fast(@Req() req: object) {
    return { paid: true, flow: 'fast', by: getRequestIdentity(req)!.subject };
  }

  /** The classic flow: any signed-in user. */
  @Post()
  @HttpCode(200)
  classic(@Req() req: object, @Res({ passthrough: true }) res: { setHeader(name: string, value: string): unknown }) {
    // RollgateModule identifies every caller it can (for the transaction context); nobody → 401
    const who = getRequestIdentity(req);
    if (!who) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new IdentityRequiredException();
    }
    return { paid: true, flow: 'classic', by: who.subject };
  }
}
