// `npm start`: builds the widget, the dashboard and the inspector if they are missing or stale, then runs the callchart
// server (pages, HTTP API and Socket.IO on one port, SQLite in ./data).
import { spawn } from 'node:child_process';

const run = (args) => spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: 'inherit' });

const build = run(['scripts/build-apps.ts', '--stale']);
const buildCode = await new Promise((resolve) => build.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
if (buildCode !== 0) {
  console.error('callchart: building the apps failed; see the errors above');
  process.exit(buildCode);
}

const child = run(['server/src/main.ts']);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
