#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SwitchboardError, errorMessage } from '../errors.js';
import { EXIT, exitCodeForError } from './exit-codes.js';
import { validateCommand } from './commands/validate.js';
import { renderCommand } from './commands/render.js';
import { diffCommand } from './commands/diff.js';
import { callsCommand } from './commands/calls.js';
import { recordingCommand } from './commands/recording.js';
import { applyCommand } from './commands/apply.js';
import { serveCommand } from './commands/serve.js';
import { presenceCommand } from './commands/presence.js';
/** The `switchboard` command line. Each command lives in commands/<name>.ts. */
export async function main(argv) {
    const cli = yargs(argv)
        .scriptName('switchboard')
        .usage('$0 <command> [options]\n\nKeeps an Asterisk PBX in step with a contact centre\'s agents.')
        .command(validateCommand)
        .command(renderCommand)
        .command(diffCommand)
        .command(applyCommand)
        .command(serveCommand)
        .command(presenceCommand)
        .command(callsCommand)
        .command(recordingCommand)
        .demandCommand(1, 'name a command: validate, render, diff, apply, serve, presence, calls, recording (see --help)')
        .strict()
        .help()
        .alias('h', 'help')
        .version(false)
        .wrap(Math.min(110, process.stdout.columns || 110))
        .fail((msg, err) => {
        if (err)
            throw err;
        throw new SwitchboardError('USAGE', msg);
    });
    try {
        await cli.parseAsync();
    }
    catch (err) {
        const code = err instanceof SwitchboardError ? err.code : undefined;
        process.stderr.write(`switchboard: ${errorMessage(err)}\n`);
        if (code === 'USAGE')
            process.stderr.write('Run with --help for usage.\n');
        if (!code)
            process.stderr.write(`${err?.stack ?? ''}\n`);
        process.exitCode = code ? exitCodeForError(code) : EXIT.INTERNAL;
    }
}
await main(hideBin(process.argv));
//# sourceMappingURL=main.js.map