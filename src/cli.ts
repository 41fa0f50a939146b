import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { JsonLogger } from './modules/observability/json-logger';
import { Database } from './modules/store/database/database';

type Command = { describe: string; run: (config: AppConfig, args: string[]) => Promise<void> };

const COMMANDS: Record<string, Command> = {
  migrate: {
    describe: 'apply pending database migrations',
    run: async (config) => {
      const db = await Database.open(config, { migrate: false });
      try {
        const applied = await db.migrate();
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
      } finally {
        await db.close();
      }
    },
  },
  'migrate:revert': {
    describe: 'revert the last applied migration',
    run: async (config) => {
      const db = await Database.open(config, { migrate: false });
      try {
        await db.revertLastMigration();
        process.stdout.write('reverted the last migration\n');
      } finally {
        await db.close();
      }
    },
  },
};

function usage(): string {
  return (
    'usage: node dist/src/cli.js <command> [args]\n\ncommands:\n' +
    Object.entries(COMMANDS)
      .map(([name, c]) => `  ${name.padEnd(16)} ${c.describe}`)
      .join('\n') +
    '\n'
  );
}

/**
 * One CLI behind the npm scripts. Uses the same configuration as the service; with the embedded
 * database it joins the server the running service holds instead of starting a second one.
 */
async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(name && name !== '--help' ? `unknown command: ${name}\n${usage()}` : usage());
    return name && name !== '--help' ? 2 : 0;
  }
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`anomaly-detector: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // Logs go to stderr so stdout carries only the command's own output.
  Logger.overrideLogger(new JsonLogger(config.logLevel, (line) => process.stderr.write(line + '\n')));
  await command.run(config, args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`anomaly-detector: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
