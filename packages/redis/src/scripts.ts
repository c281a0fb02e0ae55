import type { Cluster, Redis } from 'ioredis';

// Lua run atomically by Redis. Registered with defineCommand (EVALSHA with a NOSCRIPT fallback)
// under a versioned name, so a changed script never collides with an older cached one.

/**
 * KEYS: 1 flags hash, 2 evaluators hash, 3 version, 4 audit stream, 5 epoch
 * ARGV: 1 expected version ('' = any), 2 changes channel, 3 actor, 4 reason, 5 time (ms),
 *       6 audit max length, 7 action ('' = put/remove by change), 8 change count,
 *       9 epoch to set if none, then per change: kind ('flag' | 'evaluator'), key, json ('' = remove)
 * Returns the new version, or the error `VERSION_CONFLICT <current>` having written nothing.
 */
const WRITE = `
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then
  return redis.error_reply('VERSION_CONFLICT ' .. current)
end
local version = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[5], ARGV[9], 'NX')
local epoch = redis.call('GET', KEYS[5])
local flags, evaluators = {}, {}
local n = tonumber(ARGV[8])
for i = 0, n - 1 do
  local kind, key, json = ARGV[10 + 3 * i], ARGV[11 + 3 * i], ARGV[12 + 3 * i]
  local hash = KEYS[1]
  if kind == 'evaluator' then hash = KEYS[2]; evaluators[#evaluators + 1] = key else flags[#flags + 1] = key end
  local before = redis.call('HGET', hash, key) or ''
  local action = ARGV[7]
  if json == '' then
    redis.call('HDEL', hash, key)
    if action == '' then action = 'remove' end
  else
    redis.call('HSET', hash, key, json)
    if action == '' then action = 'put' end
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*',
    'version', version, 'time', ARGV[5], 'actor', ARGV[3], 'action', action,
    'kind', kind, 'key', key, 'before', before, 'after', json, 'reason', ARGV[4])
end
redis.call('PUBLISH', ARGV[2], cjson.encode({ version = version, epoch = epoch, keys = flags, evaluators = evaluators }))
return version
`;

export const WRITE_COMMAND = 'rollgate_write_v1';

type Client = Redis | Cluster;
type WriteFn = (flags: string, evaluators: string, version: string, audit: string, epoch: string, ...argv: (string | number)[]) => Promise<number>;

const registered = new WeakSet<object>();

/** Registers the scripts on a client once; idempotent. */
export function defineScripts(client: Client): void {
  if (registered.has(client)) return;
  client.defineCommand(WRITE_COMMAND, { numberOfKeys: 5, lua: WRITE });
  registered.add(client);
}

export async function runWrite(client: Client, keys: readonly [string, string, string, string, string], argv: (string | number)[]): Promise<number> {
  defineScripts(client);
  const fn = (client as unknown as Record<string, WriteFn>)[WRITE_COMMAND]!.bind(client);
  const reply: unknown = await fn(...keys, ...argv);
  if (typeof reply !== 'number' || !Number.isInteger(reply)) throw new Error(`unexpected reply from ${WRITE_COMMAND}: ${JSON.stringify(reply)}`);
  return reply;
}
