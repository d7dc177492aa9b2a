// `npm start`: the callchart server (HTTP API and Socket.IO on one port, SQLite in ./data).
import { spawn } from 'node:child_process';

const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
