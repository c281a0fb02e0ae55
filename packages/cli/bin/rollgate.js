#!/usr/bin/env node
'use strict';
// The `rollgate` command. A file of its own, present before any build, because npm links a
// workspace package's bin only when its target exists at install time: pointing the bin at
// dist/bin.js left `npx rollgate` missing in a fresh clone after `npm install && npm start`.
try {
  require.resolve('../dist/bin.js');
} catch {
  process.stderr.write('rollgate: the CLI is not built; run `npm run build` at the repository root\n');
  process.exit(70);
}
require('../dist/bin.js');
