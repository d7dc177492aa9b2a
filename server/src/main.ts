/** `npm start`: the callchart server, configured from the environment (see README). */
import { ConfigError, loadConfig } from './config.ts';
import { startServer } from './server.ts';

try {
  const config = loadConfig();
  const server = await startServer(config);
  const shutdown = (signal: string, drainMs: number) => {
    server.logger.info({ signal, drainMs }, 'shutting down');
    server.drain(drainMs).then(
      () => process.exit(0),
      (error: unknown) => {
        // An orchestrator reads the exit code: a stop that did not finish cleanly must not look like one that did.
        server.logger.error({ err: error, signal }, 'shutdown did not finish cleanly');
        process.exit(1);
      },
    );
  };
  // SIGTERM is an orchestrator's stop: drain first. SIGINT is someone at a terminal.
  process.once('SIGINT', () => shutdown('SIGINT', 0));
  process.once('SIGTERM', () => shutdown('SIGTERM', config.drainMs));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`callchart: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
