import { rollgateCommand } from '../src/flag-store';

// The demo's start-up lines tell people what to type in another terminal: that command must
// reach the demo's own Redis (which may not be the CLI's default, and that terminal may not have
// REDIS_URL), and the printed line must never carry the URL's password.

it('adds --redis with the Redis the demo uses, unless it is the CLI default', () => {
  expect(rollgateCommand({ redisUrl: 'redis://127.0.0.1:6380' })).toEqual({ command: 'npx rollgate --redis redis://127.0.0.1:6380 --env demo', passwordLeftOut: false });
  expect(rollgateCommand({ redisUrl: 'redis://127.0.0.1:6379' })).toEqual({ command: 'npx rollgate --env demo', passwordLeftOut: false });
  expect(rollgateCommand({ local: 'redis://127.0.0.1:6379' })).toEqual({ command: 'npx rollgate --env demo', passwordLeftOut: false });
  expect(rollgateCommand({ redisUrl: 'redis+sentinel://s1:26379,s2:26379/mymaster' }).command).toBe('npx rollgate --redis redis+sentinel://s1:26379,s2:26379/mymaster --env demo');
});

it('never prints the password: it leaves it out (and says so), keeping the user name', () => {
  const { command, passwordLeftOut } = rollgateCommand({ redisUrl: 'redis://app:s3cret-pw@redis.internal:6380/2' });
  expect(command).toBe('npx rollgate --redis redis://app@redis.internal:6380/2 --env demo');
  expect(command).not.toContain('s3cret');
  expect(passwordLeftOut).toBe(true);
  expect(rollgateCommand({ redisUrl: 'rediss://:only-a-password@cache.example:6380' })).toEqual({ command: 'npx rollgate --redis rediss://cache.example:6380 --env demo', passwordLeftOut: true });
  expect(rollgateCommand({ redisUrl: 'redis://u:p/w@d:x@host:6379' })).toEqual({ command: 'npx rollgate --redis redis://u@host:6379 --env demo', passwordLeftOut: true }); // not URL-encoded
});

it('quotes a URL the shell would split or expand, and has no hint for the in-memory store', () => {
  expect(rollgateCommand({ redisUrl: 'redis://127.0.0.1:6380/0?family=6&db=1' }).command).toBe("npx rollgate --redis 'redis://127.0.0.1:6380/0?family=6&db=1' --env demo");
  expect(rollgateCommand({ memory: true })).toEqual({ command: 'npx rollgate --env demo', passwordLeftOut: false });
});
