import type { Cluster, Redis } from 'ioredis';

// Lua run atomically by Redis. Registered with defineCommand (EVALSHA with a NOSCRIPT fallback)
// under a versioned name, so a changed script never collides with an older cached one.

/**
 * KEYS: 1 flags hash, 2 evaluators hash, 3 version, 4 audit stream, 5 epoch
 * ARGV: 1 expected version ('' = any), 2 changes channel, 3 actor, 4 reason, 5 time (ms),
 *       6 audit max length, 7 action ('' = put/remove by change), 8 change count,
 *       9 epoch to set if none, then per change: kind ('flag' | 'evaluator'), key, json ('' = remove)
 * Returns the new version, or the error `VERSION_CONFLICT <current>` or `INVALID_WRITE <why>`
 * having written nothing. Redis does not roll back a script that fails midway, so everything that
 * could fail (arguments, JSON, key types) is checked before the first write.
 */
const WRITE = `
local function invalid(message) return redis.error_reply('INVALID_WRITE ' .. message) end
-- digits only, at most 15 (exact as a Lua number, and parsed by Redis as an integer), >= min
local function integer(text, min)
  if type(text) ~= 'string' or #text > 15 or not string.find(text, '^%d+$') then return nil end
  local value = tonumber(text)
  if value < min then return nil end
  return value
end
local n = integer(ARGV[8], 1)
if not n then return invalid('change count must be an integer >= 1, got ' .. tostring(ARGV[8])) end
if #ARGV ~= 9 + 3 * n then return invalid(n .. ' changes need ' .. (9 + 3 * n) .. ' arguments, got ' .. #ARGV) end
if ARGV[1] ~= '' and not integer(ARGV[1], 0) then return invalid('expected version must be empty or an integer >= 0, got ' .. ARGV[1]) end
if ARGV[2] == '' or ARGV[3] == '' or ARGV[9] == '' then return invalid('channel, actor and epoch must not be empty') end
if not integer(ARGV[5], 0) then return invalid('time must be an integer >= 0, got ' .. ARGV[5]) end
if not integer(ARGV[6], 1) then return invalid('audit max length must be an integer >= 1, got ' .. ARGV[6]) end
for i = 0, n - 1 do
  local kind, key, json = ARGV[10 + 3 * i], ARGV[11 + 3 * i], ARGV[12 + 3 * i]
  if kind ~= 'flag' and kind ~= 'evaluator' then return invalid('change ' .. (i + 1) .. ': unknown kind ' .. kind) end
  if key == '' then return invalid('change ' .. (i + 1) .. ': empty key') end
  if json ~= '' then
    -- a flag is an object; an evaluator may be any JSON value but null
    local ok, value = pcall(cjson.decode, json)
    if not ok or value == cjson.null or (kind == 'flag' and type(value) ~= 'table') then
      return invalid('change ' .. (i + 1) .. ': ' .. kind .. ' "' .. key .. '" is not ' .. (kind == 'flag' and 'a JSON object' or 'JSON'))
    end
  end
end
for i, expected in ipairs({ 'hash', 'hash', 'string', 'stream', 'string' }) do
  local actual = redis.call('TYPE', KEYS[i]).ok
  if actual ~= 'none' and actual ~= expected then return invalid(KEYS[i] .. ' holds a ' .. actual .. ', not a ' .. expected) end
end
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if not current then return invalid(KEYS[3] .. ' does not hold a number') end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then
  return redis.error_reply('VERSION_CONFLICT ' .. current)
end
local version = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[5], ARGV[9], 'NX')
local epoch = redis.call('GET', KEYS[5])
local flags, evaluators = {}, {}
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

export const WRITE_COMMAND = 'rollgate_write_v2';

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
