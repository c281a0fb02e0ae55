import type { Cluster, Redis } from 'ioredis';

// Lua run atomically by Redis. Registered with defineCommand (EVALSHA with a NOSCRIPT fallback)
// under a versioned name, so a changed script never collides with an older cached one.

/**
 * KEYS: 1 flags hash, 2 evaluators hash, 3 version, 4 audit stream, 5 revision, 6 this write's
 *       record, 7 the rollout controller's lease
 * ARGV: 1 expected version ('' = any), 2 changes channel, 3 actor, 4 reason, 5 time (ms, for the
 *       audit), 6 audit max length, 7 action ('' = put/remove by change), 8 change count,
 *       9 write id, 10 revision to set, 11 deadline (ms on Redis' clock), 12 write record TTL (s),
 *       13 lease token ('' = not a controller write), then per change: kind ('flag' |
 *       'evaluator'), key, json ('' = remove)
 * Returns `{ version, applied }`: applied 1 for this run, 0 when a write with this id was already
 * applied (its version; nothing written again). Errors, having written nothing:
 * `INVALID_WRITE <why>`, `VERSION_CONFLICT <current>`, `WRITE_EXPIRED <now>` (Redis ran the script
 * after its deadline: the caller has stopped waiting and may already report "not applied"),
 * `FENCED` (a controller write whose lease token is no longer the lease's: another controller
 * took over, so this one must not write — checked here, at the resource).
 * Redis does not roll back a script that fails midway, so everything that could fail (arguments,
 * JSON, key types) is checked before the first write.
 */
const writeLua = (publish: string) => `
local function invalid(message) return redis.error_reply('INVALID_WRITE ' .. message) end
-- digits only, at most 15 (exact as a Lua number, and parsed by Redis as an integer), >= min
local function integer(text, min)
  if type(text) ~= 'string' or #text > 15 or not string.find(text, '^%d+$') then return nil end
  local value = tonumber(text)
  if value < min then return nil end
  return value
end
local first = 14
local n = integer(ARGV[8], 1)
if not n then return invalid('change count must be an integer >= 1, got ' .. tostring(ARGV[8])) end
if #ARGV ~= first - 1 + 3 * n then return invalid(n .. ' changes need ' .. (first - 1 + 3 * n) .. ' arguments, got ' .. #ARGV) end
if ARGV[1] ~= '' and not integer(ARGV[1], 0) then return invalid('expected version must be empty or an integer >= 0, got ' .. ARGV[1]) end
if ARGV[2] == '' or ARGV[3] == '' or ARGV[9] == '' or ARGV[10] == '' then return invalid('channel, actor, write id and revision must not be empty') end
if not integer(ARGV[5], 0) then return invalid('time must be an integer >= 0, got ' .. ARGV[5]) end
if not integer(ARGV[6], 1) then return invalid('audit max length must be an integer >= 1, got ' .. ARGV[6]) end
local deadline = integer(ARGV[11], 0)
if not deadline then return invalid('deadline must be an integer >= 0, got ' .. ARGV[11]) end
if not integer(ARGV[12], 1) then return invalid('write record TTL must be an integer >= 1, got ' .. ARGV[12]) end
for i = 0, n - 1 do
  local kind, key, json = ARGV[first + 3 * i], ARGV[first + 1 + 3 * i], ARGV[first + 2 + 3 * i]
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
for i, expected in ipairs({ 'hash', 'hash', 'string', 'stream', 'string', 'string', 'string' }) do
  local actual = redis.call('TYPE', KEYS[i]).ok
  if actual ~= 'none' and actual ~= expected then return invalid(KEYS[i] .. ' holds a ' .. actual .. ', not a ' .. expected) end
end
-- idempotence first: a retried write that was applied reports its version, whatever came since
local done = redis.call('GET', KEYS[6])
if done then
  -- a write on this connection (the record's TTL renewed), so that a WAIT after it waits for
  -- replicas to have everything up to this record: the retry confirms the first run's replication
  redis.call('EXPIRE', KEYS[6], ARGV[12])
  return { tonumber(done), 0 }
end
if ARGV[13] ~= '' and redis.call('GET', KEYS[7]) ~= ARGV[13] then return redis.error_reply('FENCED by another controller') end
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if nowMs > deadline then return redis.error_reply('WRITE_EXPIRED ' .. nowMs) end
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
if not current then return invalid(KEYS[3] .. ' does not hold a number') end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then
  return redis.error_reply('VERSION_CONFLICT ' .. current)
end
local version = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[5], ARGV[10])
redis.call('SET', KEYS[6], version, 'EX', ARGV[12])
local flags, evaluators = {}, {}
for i = 0, n - 1 do
  local kind, key, json = ARGV[first + 3 * i], ARGV[first + 1 + 3 * i], ARGV[first + 2 + 3 * i]
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
    'kind', kind, 'key', key, 'before', before, 'after', json, 'reason', ARGV[4], 'write', ARGV[9])
end
local notice = cjson.encode({ version = version, revision = ARGV[10], keys = flags, evaluators = evaluators })
${publish}
return { version, 1 }
`;

/** Single node and Sentinel (and a Cluster with classic notices): PUBLISH. */
const WRITE = writeLua(`redis.call('PUBLISH', ARGV[2], notice)`);

/**
 * Cluster with sharded notices: SPUBLISH (Redis 7+) reaches only the shard that owns the
 * environment's slot. The channel shares the keys' hash tag, so it is in the script's slot. Run
 * as pcall: should the server not know SPUBLISH (Redis 6), the write — already done — is not
 * turned into an error; it is announced with PUBLISH instead (see docs/operations.md).
 */
const WRITE_SHARDED = writeLua(`local published = redis.pcall('SPUBLISH', ARGV[2], notice)
if type(published) == 'table' and published.err then redis.call('PUBLISH', ARGV[2], notice) end`);

export const WRITE_COMMAND = 'rollgate_write_v5';
export const WRITE_SHARDED_COMMAND = 'rollgate_write_v5_sharded';

type Client = Redis | Cluster;
type WriteFn = (...args: (string | number)[]) => Promise<unknown>;

/** The keys the write script touches, in KEYS order. */
export type WriteKeys = readonly [flags: string, evaluators: string, version: string, audit: string, revision: string, writeRecord: string, lease: string];

const registered = new WeakSet<object>();

/** Registers the scripts on a client once; idempotent. */
export function defineScripts(client: Client): void {
  if (registered.has(client)) return;
  client.defineCommand(WRITE_COMMAND, { numberOfKeys: 7, lua: WRITE });
  client.defineCommand(WRITE_SHARDED_COMMAND, { numberOfKeys: 7, lua: WRITE_SHARDED });
  registered.add(client);
}

export interface ScriptWriteResult {
  version: number;
  /** False when a write with the same id had already been applied (nothing written this time). */
  applied: boolean;
}

export interface RunWriteOptions {
  /** Announce with SPUBLISH (a Cluster with sharded notices) instead of PUBLISH. */
  sharded?: boolean;
}

function resultOf(reply: unknown, name: string): ScriptWriteResult {
  if (!Array.isArray(reply) || reply.length !== 2 || !Number.isInteger(reply[0]) || (reply[1] !== 0 && reply[1] !== 1)) {
    throw new Error(`unexpected reply from ${name}: ${JSON.stringify(reply)}`);
  }
  return { version: reply[0] as number, applied: reply[1] === 1 };
}

export async function runWrite(client: Client, keys: WriteKeys, argv: (string | number)[], options: RunWriteOptions = {}): Promise<ScriptWriteResult> {
  defineScripts(client);
  const name = options.sharded ? WRITE_SHARDED_COMMAND : WRITE_COMMAND;
  const fn = (client as unknown as Record<string, WriteFn>)[name]!.bind(client);
  return resultOf(await fn(...keys, ...argv), name);
}

/** What a write followed by WAIT on its connection answered. */
export interface WaitedWriteResult {
  /** The script's result, or its error (nothing else known about the write). */
  script: ScriptWriteResult | Error;
  /** Replicas that acknowledged everything up to the write (WAIT's answer), or WAIT's error. */
  replicas: number | Error;
}

/**
 * The write script, then `WAIT replicas timeoutMs`, in one pipeline: the two are sent together on
 * one connection, so WAIT counts the replicas that have this write (WAIT waits for the writes of
 * its own connection; on another connection it would answer at once). Sent as EVAL, not EVALSHA:
 * ioredis resends a NOSCRIPT outside the pipeline, where a WAIT could run before the write.
 */
export async function runWriteAndWait(client: Client, keys: WriteKeys, argv: (string | number)[], wait: { replicas: number; timeoutMs: number }, options: RunWriteOptions = {}): Promise<WaitedWriteResult> {
  const name = options.sharded ? WRITE_SHARDED_COMMAND : WRITE_COMMAND;
  const replies = await client
    .pipeline()
    .eval(options.sharded ? WRITE_SHARDED : WRITE, keys.length, ...keys, ...argv)
    .call('WAIT', wait.replicas, wait.timeoutMs)
    .exec();
  if (!replies || replies.length !== 2) throw new Error(`unexpected reply from ${name} + WAIT: ${JSON.stringify(replies)}`);
  const [[scriptError, scriptReply], [waitError, waitReply]] = replies as [[Error | null, unknown], [Error | null, unknown]];
  let script: ScriptWriteResult | Error;
  try {
    script = scriptError ?? resultOf(scriptReply, name);
  } catch (e) {
    script = e as Error;
  }
  const replicas = waitError ?? (Number.isInteger(waitReply) ? (waitReply as number) : new Error(`unexpected reply from WAIT: ${JSON.stringify(waitReply)}`));
  return { script, replicas };
}
