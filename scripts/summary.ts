import type { AnyStateNode } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import config from '../stately.config.ts';
import { loadMachine } from './machine-docs.ts';

console.log('callchart statecharts (diagrams in docs/machines/, regenerate with npm run machines):\n');
for (const entry of config.machines) {
  const machine = await loadMachine(entry);
  const states = getStateNodes(machine.root).map((node: AnyStateNode) => node.path.join('.'));
  console.log(`${entry.name}: ${entry.summary}\n  states: ${states.join(', ')}\n`);
}
console.log('The signaling server, the widget, the dashboard and the inspector are not built yet; npm test runs every suite.');
