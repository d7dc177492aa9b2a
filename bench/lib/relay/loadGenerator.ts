/**
 * The relay benchmark's load generator, run as a worker process so the load does not share a process with
 * either server: it holds both legs of every call against both servers and drives traffic over one set at a
 * time when the parent asks.
 */
import { closeLinks, bareLink, callchartLink, type Link } from './links.ts';
import { closedLoop, openLoop } from './drive.ts';
import { reportReady, serveParent } from '../processes.ts';

type Target = 'callchart' | 'bare';
const links = new Map<Target, Link[]>();

function linksOf(target: Target): Link[] {
  const found = links.get(target);
  if (!found) throw new Error(`no calls set up against ${target}`);
  return found;
}

serveParent({
  async connectCallchart({ url, pool, pairs }: { url: string; pool: string; pairs: { agentToken: string; visitorToken: string }[] }) {
    const set: Link[] = [];
    links.set('callchart', set);
    for (const pair of pairs) set.push(await callchartLink(url, pool, pair.agentToken, pair.visitorToken));
    return { calls: set.length };
  },
  async connectBare({ url, calls }: { url: string; calls: number }) {
    const set = await Promise.all(Array.from({ length: calls }, (_, i) => bareLink(url, i)));
    links.set('bare', set);
    return { calls: set.length };
  },
  closedLoop: ({ target, ...options }: { target: Target; window: number; warmupMs: number; durationMs: number }) => closedLoop(linksOf(target), options),
  openLoop: ({ target, ...options }: { target: Target; rate: number; warmupMs: number; durationMs: number }) => openLoop(linksOf(target), options),
  close() {
    for (const set of links.values()) closeLinks(set);
    links.clear();
  },
});
reportReady();
