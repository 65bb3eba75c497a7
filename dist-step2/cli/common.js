import path from 'node:path';
import { loadStore } from '../store/yaml-store.js';
import { SwitchboardError } from '../errors.js';
/** Prints issues (errors and warnings) to stderr, one per line, errors first. */
export function printIssues(issues, stream = process.stderr) {
    const sorted = [...issues].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
    for (const i of sorted)
        stream.write(i.message + '\n');
}
/** Loads the store or fails with STORE_INVALID after printing every issue. */
export async function loadValidStore(dir) {
    const result = await loadStore(path.resolve(dir));
    if (!result.store) {
        printIssues(result.issues);
        const n = result.issues.filter((i) => i.severity === 'error').length;
        throw new SwitchboardError('STORE_INVALID', `the store ${dir} has ${n} error(s): nothing was written`);
    }
    printIssues(result.issues.filter((i) => i.severity === 'warning'));
    return { store: result.store, source: result.source, issues: result.issues };
}
export { readIfExists } from '../fsutil.js';
//# sourceMappingURL=common.js.map