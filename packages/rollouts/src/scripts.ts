import type { Cluster, Redis } from 'ioredis';

// Lua for the rollout data, registered with defineCommand under versioned names (as the flag
// store's write script). Every key lives under the environment's hash tag: one slot per environment.

/**
 * One recorder flush: adds counts into per-second hashes and units into per-minute HyperLogLogs,
 * and (re)sets their TTL — one command per instance per second, whatever the number of flags.
 * KEYS: the hashes, then the HyperLogLogs
 * ARGV: 1 TTL (s), 2 number of hashes H, then for each hash: field count c, then c × (field,
 *       increment); then for each HyperLogLog: element count c, then c elements
 */
const FLUSH = `
local ttl = tonumber(ARGV[1])
local hashes = tonumber(ARGV[2])
local at = 3
for k = 1, #KEYS do
  local count = tonumber(ARGV[at]); at = at + 1
  if k <= hashes then
    for j = 1, count do
      redis.call('HINCRBY', KEYS[k], ARGV[at], ARGV[at + 1]); at = at + 2
    end
  else
    local elements = {}
    for j = 1, count do elements[j] = ARGV[at]; at = at + 1 end
    if count > 0 then redis.call('PFADD', KEYS[k], unpack(elements)) end
  end
  redis.call('EXPIRE', KEYS[k], ttl)
end
return #KEYS
`;

/**
 * Compare-and-set of one plan, audited and announced in one step.
 * KEYS: 1 plans hash, 2 audit stream, 3 flag-set version, 4 lease
 * ARGV: 1 flag key, 2 expected planVersion (0 = the plan must not exist), 3 new plan JSON (its
 *       planVersion = expected + 1),
 *       4 lease token ('' = not a controller write), 5 audit action ('' = no audit entry: an
 *       evidence update), 6 actor, 7 reason, 8 time (ms), 9 audit max length, 10 changes channel
 * Returns the new planVersion; errors, having written nothing: `PLAN_CONFLICT <current>`
 * (`<current>` is 0 when there is no plan), `FENCED by another controller`.
 */
const PLAN_CAS = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[4] then return redis.error_reply('FENCED by another controller') end
local current = redis.call('HGET', KEYS[1], ARGV[1])
local currentVersion = 0
if current then currentVersion = cjson.decode(current).planVersion end
local expected = tonumber(ARGV[2]) or 0
if currentVersion ~= expected then return redis.error_reply('PLAN_CONFLICT ' .. currentVersion) end
-- stored as given (re-encoding would turn [] into {}): the caller numbers it expected + 1
local ok, plan = pcall(cjson.decode, ARGV[3])
if not ok or type(plan) ~= 'table' or plan.planVersion ~= currentVersion + 1 then
  return redis.error_reply('INVALID_WRITE the plan must be a JSON object with planVersion ' .. (currentVersion + 1))
end
local text = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], text)
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*',
    'version', redis.call('GET', KEYS[3]) or '0', 'time', ARGV[8], 'actor', ARGV[6], 'action', ARGV[5],
    'kind', 'plan', 'key', ARGV[1], 'before', current or '', 'after', text, 'reason', ARGV[7], 'write', '')
end
redis.call('PUBLISH', ARGV[10], cjson.encode({ flag = ARGV[1], planVersion = plan.planVersion }))
return plan.planVersion
`;

/**
 * The controller lease. ARGV: 1 token, 2 TTL (ms). KEYS: 1 lease, 2 lease epoch.
 * acquire: set when free (or already ours), bump the epoch; returns the epoch, or 0 when held by another.
 * renew: extend when still ours; 1, or 0 when lost.
 * release: delete when still ours.
 */
const LEASE_ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if holder then return tonumber(redis.call('GET', KEYS[2]) or '0') end
return redis.call('INCR', KEYS[2])
`;
const LEASE_RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;
const LEASE_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Client = Redis | Cluster;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

const SCRIPTS = {
  rollgate_flush_v1: { lua: FLUSH, numberOfKeys: undefined },
  rollgate_plan_cas_v1: { lua: PLAN_CAS, numberOfKeys: 4 },
  rollgate_lease_acquire_v1: { lua: LEASE_ACQUIRE, numberOfKeys: 2 },
  rollgate_lease_renew_v1: { lua: LEASE_RENEW, numberOfKeys: 1 },
  rollgate_lease_release_v1: { lua: LEASE_RELEASE, numberOfKeys: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

const registered = new WeakSet<object>();

/** Runs one of the scripts (registered on the client once). Keys first; for the flush, preceded by their count. */
export function runScript(client: Client, name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
  if (!registered.has(client)) {
    for (const [command, { lua, numberOfKeys }] of Object.entries(SCRIPTS)) {
      // the flush takes a variable number of keys: its first argument says how many
      client.defineCommand(command, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
    }
    registered.add(client);
  }
  return ((client as unknown as Record<string, ScriptFn>)[name]!).apply(client, args);
}
