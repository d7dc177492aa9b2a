/** `npm start`: the callchart server, configured from the environment (see README). */
import { ConfigError, loadConfig } from './config.ts';
import { startServer } from './server.ts';

try {
  const server = await startServer(loadConfig());
  const shutdown = (signal: string) => {
    server.logger.info({ signal }, 'shutting down');
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`callchart: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
