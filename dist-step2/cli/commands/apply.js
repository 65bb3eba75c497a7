import path from 'node:path';
import { AmiClient } from '../../asterisk/ami/client.js';
import { Applier, ApplyRolledBackError, describeRefused } from '../../apply/index.js';
import { PeerAuthError, SwitchboardError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { BACKENDS } from '../../model/types.js';
import { MODULE_OF_FILE, Renderer } from '../../render/render.js';
import { loadTemplates } from '../../render/templates.js';
import { loadValidStore } from '../common.js';
import { EXIT } from '../exit-codes.js';
export const applyCommand = {
    command: 'apply',
    describe: 'Render, write only what changed, reload only those modules over AMI, verify, roll back if Asterisk refused',
    builder: (y) => y
        .option('store', { type: 'string', describe: 'store directory (required, except with --restore and --list-generations)' })
        .option('out', { type: 'string', demandOption: true, describe: 'the directory Asterisk reads its config from, e.g. /etc/asterisk' })
        .option('backend', { choices: BACKENDS, describe: 'channel driver(s) (default: backend in switchboard.yaml)' })
        .option('templates', { type: 'string', describe: 'directory overriding any of templates/*/*.hbs' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'show what would change; write nothing, send nothing to Asterisk' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON on stdout' })
        .option('ami-host', { type: 'string', describe: 'Asterisk manager host; without it the files are written but no reload is sent' })
        .option('ami-port', { type: 'number', default: 5038, describe: 'Asterisk manager port' })
        .option('ami-user', { type: 'string', default: 'switchboard', describe: 'manager.conf user' })
        .option('ami-secret', { type: 'string', describe: 'manager.conf secret (better: the SWITCHBOARD_AMI_SECRET environment variable); never printed' })
        .option('ami-timeout', { type: 'number', default: 5000, describe: 'ms to wait for the AMI login before giving up (exit 4)' })
        .option('generations', { type: 'number', default: 5, describe: 'how many previous generations of the files to keep' })
        .option('restore', { type: 'string', describe: 'put back a kept generation (see --list-generations) and reload' })
        .option('list-generations', { type: 'boolean', default: false, describe: 'list the kept generations and exit' })
        .check((a) => {
        // A SwitchboardError('USAGE') reaches main's .fail() as the error: exit 2.
        if (!a.store && !a.restore && !a['list-generations'])
            throw new SwitchboardError('USAGE', '--store DIR is required (except with --restore or --list-generations)');
        if (a['dry-run'] && a.restore)
            throw new SwitchboardError('USAGE', '--dry-run cannot be combined with --restore (use --list-generations to see what is kept)');
        if (a.generations !== undefined && (!Number.isInteger(a.generations) || a.generations < 1))
            throw new SwitchboardError('USAGE', '--generations must be a whole number >= 1');
        return true;
    })
        .example('SWITCHBOARD_AMI_SECRET=… $0 apply --store /srv/agents --out /etc/asterisk --ami-host 127.0.0.1', 'apply, reload what changed, verify')
        .example('$0 apply --store /srv/agents --out /etc/asterisk --dry-run --json', 'what would change, as JSON')
        .example('$0 apply --out /etc/asterisk --list-generations', 'kept generations, newest first')
        .example('$0 apply --out /etc/asterisk --restore 20250102T030405-678Z-a1b2c3 --ami-host 127.0.0.1', 'roll back to a generation')
        .epilogue('Exit codes: 0 applied, 1 invalid store, 2 usage, 3 Asterisk refused the change (previous files restored), ' +
        '4 AMI unreachable or refused, 5 another apply holds the lock, 6 applied but a transport change needs an Asterisk restart.'),
    handler: async (args) => {
        process.exitCode = await runApply(args, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    },
};
/** The command's body; returns the exit code (errors other than a rollback are thrown for main to map). */
export async function runApply(args, io) {
    const out = path.resolve(args.out);
    const logger = io.logger ?? createLogger({ level: io.env.SWITCHBOARD_LOG_LEVEL ?? 'warn', pretty: false });
    const renderer = new Renderer(loadTemplates(args.templates));
    const deps = { renderer, outDir: out, logger, generations: args.generations };
    if (args['list-generations']) {
        const list = await new Applier(deps).listGenerations();
        if (args.json)
            io.stdout.write(JSON.stringify(list, null, 2) + '\n');
        else if (!list.length)
            io.stdout.write(`no generation kept yet in ${out}\n`);
        else
            for (const g of list)
                io.stdout.write(`${g.id}  ${g.createdAt}  ${g.files.join(', ') || '(no files: before the first apply)'}\n`);
        return EXIT.OK;
    }
    const loaded = args.restore ? undefined : await loadValidStore(args.store);
    const dryRun = args['dry-run'];
    const ami = dryRun ? undefined : await connectAmi(args, io.env, logger);
    try {
        const applier = new Applier({ ...deps, ...(ami ? { ami } : {}) });
        let report;
        try {
            if (args.restore) {
                report = await applier.restore(args.restore);
            }
            else {
                report = await applier.apply(loaded.store, { dryRun, ...(args.backend ? { backend: args.backend } : {}) });
            }
        }
        catch (err) {
            if (err instanceof ApplyRolledBackError) {
                if (args.json)
                    io.stdout.write(JSON.stringify(err.report, null, 2) + '\n');
                io.stderr.write(`switchboard: ${err.message}\n`);
                return EXIT.ROLLED_BACK;
            }
            if (err instanceof SwitchboardError && err.code === 'GENERATION_NOT_FOUND')
                throw new SwitchboardError('USAGE', err.message);
            throw err;
        }
        if (!dryRun && !args.restore && loaded)
            await loaded.source.saveAssignments(loaded.store);
        if (args.json)
            io.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else
            io.stdout.write(humanReport(report, { out, restored: args.restore, amiGiven: ami !== undefined }));
        if (report.restartNeeded.length && !dryRun) {
            io.stderr.write(`switchboard: applied, but Asterisk must be restarted for the transport change: ${report.restartNeeded.join('; ')}\n`);
            return EXIT.RESTART_NEEDED;
        }
        return EXIT.OK;
    }
    finally {
        await ami?.stop();
    }
}
async function connectAmi(args, env, logger) {
    const host = args['ami-host'];
    if (!host)
        return undefined;
    const secret = args['ami-secret'] ?? env.SWITCHBOARD_AMI_SECRET;
    if (!secret)
        throw new SwitchboardError('USAGE', 'the AMI secret is missing: set SWITCHBOARD_AMI_SECRET (or pass --ami-secret)');
    const port = args['ami-port'];
    const timeoutMs = args['ami-timeout'];
    const client = new AmiClient({ host, port, username: args['ami-user'], secret, connectTimeoutMs: Math.min(timeoutMs, 5000), reconnectInitialMs: 100, reconnectMaxMs: 1000 }, 
    // Reconnect chatter would only repeat the one error this command prints (unless asked for).
    env.SWITCHBOARD_LOG_LEVEL ? logger : logger.child({}, { level: 'error' }));
    let onAuth;
    const authFailed = new Promise((_, reject) => {
        onAuth = (err) => reject(err);
        client.once('authFailed', onAuth);
    });
    client.start();
    try {
        await Promise.race([client.waitConnected(timeoutMs), authFailed]);
    }
    catch (err) {
        await client.stop();
        if (err instanceof PeerAuthError)
            throw err;
        throw new SwitchboardError('PEER_TIMEOUT', `AMI at ${host}:${port} is unreachable (no login within ${timeoutMs} ms): check --ami-host/--ami-port and that manager.conf enables the manager for user "${args['ami-user']}". Nothing was written.`, { host, port });
    }
    finally {
        if (onAuth)
            client.off('authFailed', onAuth);
        authFailed.catch(() => undefined);
    }
    return client;
}
function names(list) {
    if (!list.length)
        return '';
    const shown = list.slice(0, 8).join(', ');
    return ` (${shown}${list.length > 8 ? `, … ${list.length - 8} more` : ''})`;
}
export function humanReport(r, ctx) {
    const lines = [];
    const what = r.dryRun ? 'dry run' : ctx.restored ? `restore of ${ctx.restored}` : 'apply';
    lines.push(`switchboard ${what} into ${ctx.out} (generation ${r.generation})`);
    const { added, changed, removed } = r.agents;
    lines.push(`  agents:     ${added.length} added${names(added)}, ${changed.length} changed${names(changed)}, ${removed.length} removed${names(removed)}`);
    lines.push(`  files:      ${r.changedFiles.length ? r.changedFiles.join(', ') + (r.dryRun ? ' would be written' : ' written') : 'no file changed'}`);
    if (r.dryRun) {
        lines.push(`  reload:     ${r.modules.length ? r.modules.join(', ') + ' would be reloaded' : 'nothing to reload'}`);
        lines.push('  dry run:    nothing was written and nothing was sent to Asterisk');
    }
    else if (!ctx.amiGiven) {
        const modules = [...new Set(r.changedFiles.map((f) => MODULE_OF_FILE[f]).filter(Boolean))];
        lines.push(`  reload:     no reload sent (no --ami-host)${modules.length ? `: Asterisk has not loaded them yet; run "module reload" for ${modules.join(', ')}` : ''}`);
    }
    else {
        lines.push(`  reloaded:   ${r.modules.length ? r.modules.join(', ') : 'nothing (Asterisk already runs this config)'}`);
        lines.push(`  verified:   ${r.verified ? 'yes, Asterisk shows every added, changed and removed agent as expected' : 'no'}`);
    }
    if (r.refused.length)
        for (const x of r.refused)
            lines.push(`  refused:    ${describeRefused(x)}`);
    if (r.restartNeeded.length)
        lines.push(`  RESTART NEEDED (pjsip transports do not reload): ${r.restartNeeded.join('; ')}`);
    lines.push(`  took ${r.durationMs} ms`);
    return lines.join('\n') + '\n';
}
//# sourceMappingURL=apply.js.map