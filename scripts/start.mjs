// `npm start`: the server is not built yet, so this lists the statecharts that are, with their states.
import { spawnSync } from 'node:child_process';

const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/summary.ts'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
