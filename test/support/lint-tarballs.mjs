// Lints packed tarballs as users' tools will see them, for test/packaging.spec.ts:
//  - publint: package.json against the files (entry points exist and are published, formats,
//    condition order, `files`, `type`, `engines`);
//  - Are The Types Wrong (@arethetypeswrong/core, as `attw` with its default "strict" profile):
//    every entry point's types under node10, node16 from CJS and ESM, and bundler resolution.
// ESM-only libraries, so a child process of its own: `node lint-tarballs.mjs a.tgz b.tgz` prints
// { "<tarball>": { "publint": ["suggestion: …", …], "attw": ["<kind> …", …] } } as JSON.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { checkPackage, createPackageFromTarballData } from '@arethetypeswrong/core';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const results = {};
for (const tarball of process.argv.slice(2)) {
  const data = await readFile(tarball);
  const { messages, pkg } = await publint({ pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) }, level: 'suggestion', strict: true });
  const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(data)));
  results[basename(tarball)] = {
    publint: messages.map((m) => `${m.type}: ${m.code}: ${formatMessage(m, pkg, { color: false }) ?? ''}`),
    attw: analysis.types ? analysis.problems.map((p) => `${p.kind} ${JSON.stringify(p)}`) : ['untyped: no types found'],
  };
}
console.log(JSON.stringify(results));
