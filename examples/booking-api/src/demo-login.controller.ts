import { Controller, Header, HttpCode, NotFoundException, Param, Post } from '@nestjs/common';
import { demoToken } from './demo-users';

/** `POST /demo/login/:user` → a DEMO-ONLY JWT (text/plain) for one of the demo users. */
@Controller('demo')
export class DemoLoginController {
  @Post('login/:user')
  @HttpCode(200)
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  login(@Param('user') user: string): string {
    const token = demoToken(user);
    if (!token) throw new NotFoundException({ error: 'unknown demo user' });
    return token;
  }
}
