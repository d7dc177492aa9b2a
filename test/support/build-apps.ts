/**
 * Vitest globalSetup: the suites that load the pages in a server or a browser need the built widget
 * dashboard and inspector, so stale or missing builds are made once before any suite runs.
 */
import { buildApps } from '../../scripts/build-apps.ts';

export default async function setup(): Promise<void> {
  await buildApps({ onlyStale: true });
}
