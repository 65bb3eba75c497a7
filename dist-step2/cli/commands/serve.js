import { BACKENDS } from '../../model/types.js';
import { LOG_LEVELS, loadDaemonSettings, resolveConfigFile } from '../../config/settings.js';
import { createLogger } from '../../log.js';
import { buildDaemon, serveUntilSignal } from '../../daemon/main.js';
import { EXIT } from '../exit-codes.js';
/** Grace period after a clean stop before forcing the exit (something may hold the event loop). */
const EXIT_GRACE_MS = 3000;
export const serveCommand = {
    command: 'serve',
    describe: 'Run the daemon: watch the store and apply every valid change to Asterisk (render-only without AMI)',
    builder: (y) => y
        .option('config', { type: 'string', describe: 'settings file (INI); default $SWITCHBOARD_CONFIG, else ./switchboard.ini if present' })
        .option('store', { type: 'string', describe: 'store directory ([store] dir)' })
        .option('out', { type: 'string', describe: 'output directory Asterisk reads ([output] dir, default ./out)' })
        .option('backend', { choices: BACKENDS, describe: 'channel driver(s) to render for ([output] backend; default: the store\'s)' })
        .option('templates', { type: 'string', describe: 'template override directory ([output] templates)' })
        .option('ami-host', { type: 'string', describe: 'AMI host ([asterisk] ami_host); with ami-user turns reloads on' })
        .option('ami-port', { type: 'number', describe: 'AMI port ([asterisk] ami_port, default 5038)' })
        .option('ami-user', { type: 'string', describe: 'AMI user ([asterisk] ami_user); the secret only via the settings file or SWITCHBOARD_ASTERISK_AMI_SECRET' })
        .option('debounce-ms', { type: 'number', describe: 'quiet time before applying a burst of edits ([apply] debounce_ms, default 150)' })
        .option('data-dir', { type: 'string', describe: 'state directory ([data] dir, default ./var)' })
        .option('log-level', { choices: LOG_LEVELS, describe: 'log level ([log] level, default info)' })
        .option('once', { type: 'boolean', default: false, describe: 'apply once and exit (CI, cron): exit code as for apply' })
        .example('$0 serve --store fixtures/store --out ./out', 'render-only: write files on every valid edit, send no reload')
        .example('SWITCHBOARD_ASTERISK_AMI_SECRET=... $0 serve --config /etc/switchboard/switchboard.ini', 'watch, apply and reload over AMI')
        .example('$0 serve --config switchboard.ini --once', 'apply the store once and exit')
        .epilog('Every setting, its environment variable and default: docs/SETTINGS.md. SIGTERM/SIGINT finish the apply in progress, then exit 0.'),
    handler: async (args) => {
        const flags = {
            ...(args.store !== undefined ? { store: args.store } : {}),
            ...(args.out !== undefined ? { out: args.out } : {}),
            ...(args.backend !== undefined ? { backend: args.backend } : {}),
            ...(args.templates !== undefined ? { templates: args.templates } : {}),
            ...(args.amiHost !== undefined ? { amiHost: args.amiHost } : {}),
            ...(args.amiPort !== undefined ? { amiPort: args.amiPort } : {}),
            ...(args.amiUser !== undefined ? { amiUser: args.amiUser } : {}),
            ...(args.debounceMs !== undefined ? { debounceMs: args.debounceMs } : {}),
            ...(args.dataDir !== undefined ? { dataDir: args.dataDir } : {}),
            ...(args.logLevel !== undefined ? { logLevel: args.logLevel } : {}),
        };
        const settings = loadDaemonSettings({ configFile: resolveConfigFile(args.config, process.env), env: process.env, flags });
        // Buffered (see LoggerSettings.sync): no blocking write per line on the daemon's hot paths.
        const logger = createLogger({ level: settings.log.level, sync: false });
        if (args.once) {
            const app = buildDaemon(settings, logger, { watch: false, amiStartWaitMs: 5000 });
            try {
                const report = await app.runOnce();
                if (report.restartNeeded.length)
                    process.exitCode = EXIT.RESTART_NEEDED;
            }
            finally {
                await app.stop();
            }
            return;
        }
        const app = buildDaemon(settings, logger);
        await serveUntilSignal(app);
        process.exitCode = EXIT.OK;
        // Everything is closed; if something still holds the event loop, do not hang for ever.
        setTimeout(() => process.exit(process.exitCode ?? EXIT.OK), EXIT_GRACE_MS).unref();
    },
};
//# sourceMappingURL=serve.js.map