// tsc writes files without the executable bit. npm sets it on a bin only when the package is installed as a
// dependency, so in a clone `npx getaway` (the README's front door) would find the bin and fail to run it.
import { chmodSync } from 'node:fs';

chmodSync('dist/src/cli/main.js', 0o755);
