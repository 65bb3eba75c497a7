import path from 'node:path';
import { loadStore } from '../../store/yaml-store.js';
import { printIssues } from '../common.js';
import { EXIT } from '../exit-codes.js';
export const validateCommand = {
    command: 'validate',
    describe: 'Check the agent store and report every issue (file, line, agent, field, fix)',
    builder: (y) => y
        .option('store', { type: 'string', demandOption: true, describe: 'store directory (switchboard.yaml + agents/*.yaml)' })
        .option('json', { type: 'boolean', default: false, describe: 'print {valid, agents, errors, warnings} as JSON on stdout' })
        .example('$0 validate --store fixtures/store', 'exit 0 when valid, 1 when any error')
        .example('$0 validate --store fixtures/bad-store --json', 'issues for machines'),
    handler: async (args) => {
        const result = await loadStore(path.resolve(args.store));
        const errors = result.issues.filter((i) => i.severity === 'error');
        const warnings = result.issues.filter((i) => i.severity === 'warning');
        if (args.json) {
            process.stdout.write(JSON.stringify({ valid: errors.length === 0, agents: result.store?.agents.length ?? 0, errors, warnings }, null, 2) + '\n');
        }
        else {
            printIssues(result.issues);
            if (result.store) {
                process.stdout.write(`store ${args.store} is valid: ${result.store.agents.length} agents, ${warnings.length} warning(s)\n`);
            }
            else {
                process.stderr.write(`store ${args.store} is invalid: ${errors.length} error(s), ${warnings.length} warning(s)\n`);
            }
        }
        process.exitCode = errors.length ? EXIT.INVALID_OR_DIFFERENT : EXIT.OK;
    },
};
//# sourceMappingURL=validate.js.map