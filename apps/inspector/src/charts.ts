/**
 * One chart per machine kind: its definition and its ELK layout, computed the first time a kind is
 * shown and shared by every actor of that kind, since the layout never depends on the actor's state.
 */
import { agentMachine, callSessionMachine, peerConnectionMachine, routingMachine, signalingMachine, visitorCallMachine } from '@callchart/machines';
import type { AnyStateMachine } from 'xstate';
import type { StatechartLayout } from './layout.ts';
import { machineDefinition, toStatechartGraph, type MachineDefinition } from './statechartGraph.ts';
import type { ActorKind } from '@callchart/machines';

export interface Chart {
  definition: MachineDefinition;
  layout: StatechartLayout;
}

const machines: Record<ActorKind, AnyStateMachine> = {
  routing: routingMachine,
  callSession: callSessionMachine,
  visitorCall: visitorCallMachine,
  agent: agentMachine,
  peerConnection: peerConnectionMachine,
  signaling: signalingMachine,
};

export function isChartedKind(kind: string): kind is ActorKind {
  return Object.hasOwn(machines, kind);
}

const charts = new Map<ActorKind, Promise<Chart>>();

export function chartOf(kind: ActorKind): Promise<Chart> {
  let chart = charts.get(kind);
  if (!chart) {
    chart = (async () => {
      const definition = machineDefinition(machines[kind]);
      // ELK is most of the page's weight: loaded with the first chart, it keeps the login page light.
      const { layoutStatechart } = await import('./layout.ts');
      return { definition, layout: await layoutStatechart(toStatechartGraph(definition)) };
    })();
    // A failed layout is not remembered, so showing the kind again tries again.
    chart.catch(() => charts.delete(kind));
    charts.set(kind, chart);
  }
  return chart;
}
