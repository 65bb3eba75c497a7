import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
/** Auto-assigned extensions live beside the store so they stay stable across runs. */
export const ASSIGNMENTS_FILE = '.extensions.json';
export async function readAssignments(storeDir) {
    try {
        const raw = JSON.parse(await fs.readFile(path.join(storeDir, ASSIGNMENTS_FILE), 'utf8'));
        const out = new Map();
        for (const [id, ext] of Object.entries(raw.assignments ?? {})) {
            if (/^[0-9]+$/.test(id) && typeof ext === 'string' && /^[0-9]+$/.test(ext))
                out.set(id, ext);
        }
        return out;
    }
    catch (err) {
        // A missing or unreadable file only means extensions are assigned afresh from the range.
        if (err.code === 'ENOENT' || err instanceof SyntaxError)
            return new Map();
        throw err;
    }
}
export async function writeAssignments(storeDir, assignments) {
    const sorted = Object.fromEntries([...assignments].sort(([a], [b]) => a.length - b.length || a.localeCompare(b)));
    const body = JSON.stringify({ note: 'Extensions assigned by switchboard from the range; kept so they stay stable. Do not edit.', assignments: sorted }, null, 2) + '\n';
    await writeFileAtomic(path.join(storeDir, ASSIGNMENTS_FILE), body, 0o644);
}
//# sourceMappingURL=assignments.js.map