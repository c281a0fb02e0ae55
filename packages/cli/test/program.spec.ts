import { runCli } from '@rollgate/cli';
import { fakeDeps } from './support/cli';

// The program in-process (the bin only calls runCli): help on every command and usage errors,
// without spawning a process per case. The child-process suite covers the real bin.


const COMMANDS = [
  [],
  ['flags'],
  ['flags', 'list'],
  ['flags', 'get'],
  ['flags', 'push'],
  ['flags', 'pull'],
  ['flags', 'diff'],
  ['enable'],
  ['disable'],
  ['rollout'],
  ['segment'],
  ['segment', 'list'],
  ['segment', 'add'],
  ['segment', 'remove'],
  ['audit'],
  ['revert'],
  ['explain'],
  ['watch'],
];

it.each(COMMANDS.map((c) => [c.join(' ') || '(root)', c]))('%s --help prints usage and global options, exit 0', async (_name, command) => {
  const deps = fakeDeps();
  expect(await runCli([...(command as string[]), '--help'], deps)).toBe(0);
  expect(deps.out).toContain(`Usage: rollgate${(command as string[]).length ? ` ${(command as string[]).join(' ')}` : ''}`);
  expect(deps.out).toMatch(/--redis <url>[\s\S]*--env <name>[\s\S]*--actor <name>[\s\S]*--reason <text>[\s\S]*--json/);
  expect(deps.opened).toBe(0);
});

it('documents the exit codes in the root help', async () => {
  const deps = fakeDeps();
  await runCli(['--help'], deps);
  for (const line of ['0  ok', '1  unexpected error', '2  usage error', '3  validation error', '4  version conflict', '5  not found', '6  Redis unreachable']) {
    expect(deps.out).toContain(line);
  }
});

it.each([
  [[]],
  [['bogus']],
  [['flags']],
  [['flags', 'list', '--bogus']],
  [['flags', 'get']],
  [['rollout', 'f', '150']],
  [['rollout', 'f', '-5']],
  [['rollout', 'f', '12.5']],
  [['explain', 'f', '--context', '{not json']],
  [['explain', 'f', '--context', '[1]']],
  [['--env', 'bad env', 'flags', 'list']],
  [['audit', '--limit', '0']],
  [['revert', 'x', '--to', 'yesterday']],
  [['enable', 'x', '--expected-version', '-1']],
  [['segment', 'add', 'vip', 'tenant']],
  [['--actor', ' ', 'disable', 'f']],
])('%j is a usage error: exit 2, message on stderr, nothing on stdout', async (args) => {
  const deps = fakeDeps();
  expect(await runCli(args, deps)).toBe(2);
  expect(deps.out).toBe('');
  expect(deps.err).not.toBe('');
});

it('reports --version', async () => {
  const deps = fakeDeps();
  expect(await runCli(['--version'], deps)).toBe(0);
  expect(deps.out).toBe('0.1.0\n');
});
