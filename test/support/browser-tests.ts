import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

// Which test files drive Chromium, and what `npm test` says when the machine has none: those
// files are left out of their projects (jest.config.ts) and the run ends with ONE line naming
// them and how to get Chromium, and fails — instead of one stack trace per browser test. CI
// (.ci/run) installs Chromium, so there every browser test runs; nothing is ever skipped there.
// No playwright import here: jest.config.ts loads this file.

/** Debian's Chromium, or ROLLGATE_CHROMIUM (a Chromium installed elsewhere). */
export const CHROMIUM = process.env.ROLLGATE_CHROMIUM ?? '/usr/bin/chromium';

const ROOT = resolve(__dirname, '../..');

/** Test files (absolute paths) that use test/support/browser.ts, i.e. launch Chromium. */
export function browserTestFiles(): string[] {
  const dirs = [
    ...['packages', 'examples'].flatMap((top) => readdirSync(join(ROOT, top)).map((name) => join(ROOT, top, name, 'test'))),
    join(ROOT, 'test'),
  ].filter((d) => existsSync(d));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === 'node_modules' || name === 'support') continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.spec.ts') && /from '[./]*(test\/)?support\/browser'/.test(readFileSync(path, 'utf8'))) files.push(path);
    }
  };
  dirs.forEach(walk);
  return files.sort();
}

export const hasChromium = (): boolean => existsSync(CHROMIUM);

/** The one line: which browser tests did not run, and how to get Chromium. */
export function missingChromiumLine(files: string[]): string {
  return (
    `rollgate: ${files.length} browser test file${files.length === 1 ? '' : 's'} did not run because Chromium is missing at ${CHROMIUM} ` +
    `(${files.map((f) => relative(ROOT, f)).join(', ')}): install it with \`sudo apt-get install -y chromium\` (.ci/run does), then run the tests again.`
  );
}

/** The values of a jest CLI option that takes a list (`--name a b`, `--name=a`), or undefined when absent. */
function argList(name: string, argv = process.argv): string[] | undefined {
  let values: string[] | undefined;
  argv.forEach((arg, i) => {
    if (arg.startsWith(`--${name}=`)) (values ??= []).push(arg.slice(name.length + 3));
    else if (arg === `--${name}`) {
      values ??= [];
      for (let j = i + 1; j < argv.length && !argv[j]!.startsWith('-'); j++) values.push(argv[j]!);
    }
  });
  return values;
}

/**
 * jest globalTeardown when Chromium is missing: fails the run with the one line if the browser
 * tests it left out were part of this run's selection (projects, path patterns).
 */
export default async function missingChromium(globalConfig: { testPathPatterns?: { patterns: readonly string[] } }): Promise<void> {
  const patterns = globalConfig.testPathPatterns?.patterns ?? [];
  // jest keeps --selectProjects / --ignoreProjects out of globalConfig: read them as given
  const selectProjects = argList('selectProjects');
  const ignoreProjects = argList('ignoreProjects');
  const projectOf = (file: string) => {
    const [top, name] = relative(ROOT, file).split('/');
    return top === 'test' ? 'packaging' : name!; // packages/<name>, examples/<name>: the project's name
  };
  const leftOut = browserTestFiles().filter((file) => {
    const project = projectOf(file);
    if (selectProjects && !selectProjects.includes(project)) return false;
    if (ignoreProjects?.includes(project)) return false;
    return patterns.length === 0 || patterns.some((p) => new RegExp(p, 'i').test(file));
  });
  if (leftOut.length === 0) return;
  const error = new Error(missingChromiumLine(leftOut));
  error.stack = error.message; // one line, no trace: the fix is in the message
  throw error;
}
