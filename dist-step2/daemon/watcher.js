import { watch as fsWatch, statSync } from 'node:fs';
import path from 'node:path';
import { watch } from 'chokidar';
import { AGENTS_DIR, SETTINGS_FILE, isStoreFile } from '../store/yaml-store.js';
/**
 * The real watcher, in two parts:
 *
 * - chokidar 4 on the store directory, depth 0 (it ignores globs, so the filter is an `ignored`
 *   function): `switchboard.yaml` (add, change, unlink) and the agents directory itself (addDir,
 *   unlinkDir). The store directory holds a handful of entries, so chokidar's re-read of it on each
 *   event there costs nothing.
 * - one `fs.watch` on the agents directory for the agent files (one inotify watch; each event names
 *   the file). chokidar is not pointed at that directory because, on every event in a directory it
 *   watches (an in-place write included), chokidar 4 re-reads the whole directory (readdirp, an
 *   `lstat` per entry, the filter on each): about 0.25 s of the event loop per edit with 10,000
 *   agent files (measured in the apply-latency benchmark). The daemon only needs "this file may
 *   have changed": every event of an agent file is passed on ('rename': 'add' when the file is
 *   there, 'unlink' when not; 'change': 'change'), and the daemon re-reads the file after its
 *   debounce, so an editor's atomic save (temp file renamed over the agent), an in-place write,
 *   a new file and a deleted file all reach it. Temp and backup files (dot files, `~`, other
 *   extensions) are filtered with isStoreFile, as before.
 *
 * The agents directory removed, recreated or replaced (renamed away and another put in its place):
 * chokidar's addDir/unlinkDir, and the `fs.watch`'s own events on the directory, make the watcher
 * compare the directory's inode with the one it watches and re-open its `fs.watch` on the new one;
 * the daemon re-reads the whole store on addDir/unlinkDir. No `awaitWriteFinish` (it adds latency):
 * the daemon debounces instead.
 */
export const chokidarWatcher = async (dir, onEvent, onError) => {
    const root = path.resolve(dir);
    const agents = path.join(root, AGENTS_DIR);
    const settings = path.join(root, SETTINGS_FILE);
    const agentFiles = new AgentsDirWatch(root, agents, onEvent, onError);
    agentFiles.check();
    const watcher = watch(root, {
        ignoreInitial: true,
        depth: 0,
        persistent: true,
        ignored: (p) => {
            const abs = path.resolve(p);
            return !(abs === root || abs === agents || abs === settings);
        },
    });
    watcher.on('all', (event, p) => {
        const abs = path.resolve(p);
        if (event === 'addDir' || event === 'unlinkDir') {
            // Re-open the agents directory's watch before the daemon re-reads the store.
            if (abs === agents)
                agentFiles.check();
            onEvent(event, abs);
        }
        else if (event === 'add' || event === 'change' || event === 'unlink') {
            onEvent(event, abs);
        }
    });
    watcher.on('error', (err) => onError(err instanceof Error ? err : new Error(String(err))));
    await new Promise((resolve) => watcher.once('ready', () => resolve()));
    // The directory may have come or gone during chokidar's first scan (ignoreInitial hides it).
    if (agentFiles.check())
        onEvent(agentFiles.watching ? 'addDir' : 'unlinkDir', agents);
    return {
        close: async () => {
            agentFiles.close();
            await watcher.close();
        },
    };
};
/** One `fs.watch` on the agents directory, re-opened when the directory is replaced. */
class AgentsDirWatch {
    root;
    dir;
    onEvent;
    onError;
    watcher;
    ino;
    closed = false;
    constructor(root, dir, onEvent, onError) {
        this.root = root;
        this.dir = dir;
        this.onEvent = onEvent;
        this.onError = onError;
    }
    get watching() {
        return this.watcher !== undefined;
    }
    /**
     * Makes the watch follow the directory now at `dir`: opens it when the directory appeared or was
     * replaced (another inode), closes it when the directory is gone. Returns whether anything changed.
     */
    check() {
        if (this.closed)
            return false;
        const ino = dirIno(this.dir);
        if (ino !== undefined && ino === this.ino && this.watcher)
            return false;
        const had = this.watcher !== undefined;
        this.stop();
        if (ino === undefined)
            return had;
        let w;
        try {
            w = fsWatch(this.dir, { persistent: true }, (kind, name) => this.event(kind, name));
        }
        catch (err) {
            if (err.code !== 'ENOENT')
                this.onError(err);
            return had;
        }
        w.on('error', (err) => {
            // The directory went away under the watch (or inotify refused it): follow what is there now.
            if (w !== this.watcher)
                return;
            this.stop();
            if (dirIno(this.dir) !== undefined)
                this.onError(err);
            this.changedUnder();
        });
        // The inode stat'ed before the watch opened: if the directory was swapped in between, the
        // watch is on the newer one and the next check() merely re-opens it; if it is swapped after,
        // the old one's move or deletion event makes check() see the new inode.
        this.watcher = w;
        this.ino = ino;
        return true;
    }
    close() {
        this.closed = true;
        this.stop();
    }
    stop() {
        const w = this.watcher;
        this.watcher = undefined;
        this.ino = undefined;
        w?.close();
    }
    event(kind, name) {
        if (this.closed)
            return;
        const base = typeof name === 'string' ? name : name ? name.toString('utf8') : '';
        const abs = base ? path.join(this.dir, base) : '';
        if (abs && isStoreFile(this.root, abs)) {
            this.onEvent(kind === 'change' ? 'change' : dirIno(abs, true) !== undefined ? 'add' : 'unlink', abs);
            return;
        }
        // Anything else may be an event on the directory itself (deleted, moved: inotify names the
        // watched directory then) or debris (temp and backup files): look whether the directory is
        // still the one watched.
        if (kind === 'rename')
            this.changedUnder();
    }
    changedUnder() {
        if (this.check())
            this.onEvent(this.watcher ? 'addDir' : 'unlinkDir', this.dir);
    }
}
/** The inode of `p` when it is a directory (or, with `anyKind`, anything), else undefined. */
function dirIno(p, anyKind = false) {
    try {
        const st = statSync(p);
        return anyKind || st.isDirectory() ? st.ino : undefined;
    }
    catch {
        return undefined;
    }
}
//# sourceMappingURL=watcher.js.map