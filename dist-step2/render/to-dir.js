import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StagedFile } from '../fsutil.js';
/**
 * Renders the store into `outDir` the way `switchboard render` does, without ever holding the
 * output: each file's pieces go straight to a temp file beside it (Renderer.renderOnce), and only
 * once every file rendered and passed the checks is each one, in order, either renamed into place
 * (atomically, fsync'd) or, when the directory already holds exactly that content, dropped. A
 * render that fails (template error, RENDER_CHECK_FAILED) leaves the directory as it was (and
 * removes it again if it did not exist). A 100k-agent store renders 145 MB this way with a few MB
 * of output in memory at a time, where render() would hold it twice (chunks and joined files).
 */
export async function renderToDir(renderer, store, backend, outDir) {
    const created = await fs.mkdir(outDir, { recursive: true });
    const staged = [];
    try {
        renderer.renderOnce(store, backend, (file) => {
            const f = new StagedFile(path.join(outDir, file), 0o640);
            staged.push(f);
            return f;
        });
    }
    catch (err) {
        for (const f of staged)
            f.discardSync();
        if (created)
            await removeCreated(outDir, created);
        throw err;
    }
    const out = [];
    let i = 0;
    try {
        for (; i < staged.length; i++) {
            const f = staged[i];
            const changed = await f.commit();
            out.push({ file: path.basename(f.target), bytes: f.bytes, changed });
        }
    }
    finally {
        for (; i < staged.length; i++)
            staged[i].discardSync();
    }
    return out;
}
/** Removes the (now empty) directories fs.mkdir created, deepest first, up to `created`. */
async function removeCreated(outDir, created) {
    for (let dir = path.resolve(outDir);; dir = path.dirname(dir)) {
        await fs.rmdir(dir).catch(() => { });
        if (dir === path.resolve(created) || dir === path.dirname(dir))
            return;
    }
}
//# sourceMappingURL=to-dir.js.map