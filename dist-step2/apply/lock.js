import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ApplyLockedError } from './errors.js';
/** Runs one task at a time, in call order (the in-process half of "never two applies at once"). */
export class Mutex {
    tail = Promise.resolve();
    run(task) {
        const result = this.tail.then(task);
        this.tail = result.catch(() => undefined);
        return result;
    }
}
function processStartedAt() {
    return Math.round(Date.now() - process.uptime() * 1000);
}
/** True unless `kill(pid, 0)` says the process does not exist. */
export function pidAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    }
    catch (err) {
        return err.code === 'EPERM';
    }
}
/**
 * A lock file holding the owner's pid, created atomically (written to a temp file, then hard-linked
 * to the lock name, which fails if it exists). A lock whose pid is dead — or is this very pid from
 * an earlier incarnation of the process (a restarted container reuses pid 1) — is stale and taken
 * over, so a lock survives a crash without blocking the next apply for ever.
 */
export class FileLock {
    file;
    ownToken;
    constructor(file) {
        this.file = file;
    }
    async acquire() {
        await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o750 });
        const info = { pid: process.pid, processStartedAt: processStartedAt(), host: os.hostname(), acquiredAt: new Date().toISOString() };
        const token = randomBytes(6).toString('hex');
        const body = JSON.stringify({ ...info, token }) + '\n';
        for (let attempt = 0; attempt < 5; attempt++) {
            const tmp = `${this.file}.${process.pid}.${token}.tmp`;
            await fs.writeFile(tmp, body, { mode: 0o640 });
            try {
                await fs.link(tmp, this.file);
                this.ownToken = token;
                return;
            }
            catch (err) {
                if (err.code !== 'EEXIST')
                    throw err;
            }
            finally {
                await fs.rm(tmp, { force: true });
            }
            const holder = await this.read(this.file);
            if (holder === 'missing')
                continue;
            if (!this.isStale(holder))
                throw new ApplyLockedError(this.file, holder?.pid);
            await this.takeOver(holder);
        }
        throw new ApplyLockedError(this.file, undefined);
    }
    /** Removes the lock if it is still ours. */
    async release() {
        const token = this.ownToken;
        this.ownToken = undefined;
        if (!token)
            return;
        try {
            const text = await fs.readFile(this.file, 'utf8');
            if (JSON.parse(text).token === token)
                await fs.rm(this.file, { force: true });
        }
        catch {
            // Gone already, or unreadable: nothing of ours to remove.
        }
    }
    async read(file) {
        let text;
        try {
            text = await fs.readFile(file, 'utf8');
        }
        catch (err) {
            if (err.code === 'ENOENT')
                return 'missing';
            throw err;
        }
        try {
            const v = JSON.parse(text);
            if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0) {
                return { pid: v.pid, processStartedAt: Number(v.processStartedAt) || 0, host: String(v.host ?? ''), acquiredAt: String(v.acquiredAt ?? '') };
            }
        }
        catch {
            // An older or foreign format: a bare pid.
            const pid = Number(text.trim());
            if (Number.isInteger(pid) && pid > 0)
                return { pid, processStartedAt: 0, host: '', acquiredAt: '' };
        }
        return undefined;
    }
    isStale(holder) {
        // Unreadable content cannot come from us (the lock is linked complete): treat it as debris.
        if (!holder)
            return true;
        if (holder.host && holder.host !== os.hostname())
            return false;
        if (holder.pid === process.pid) {
            // Our pid: ours only if written by this incarnation (another Applier in this process holds it).
            return holder.processStartedAt !== 0 && Math.abs(holder.processStartedAt - processStartedAt()) > 2000;
        }
        return !pidAlive(holder.pid);
    }
    /** Moves a stale lock aside; if what was moved turns out to be a fresh lock, puts it back. */
    async takeOver(stale) {
        const aside = `${this.file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
        try {
            await fs.rename(this.file, aside);
        }
        catch (err) {
            if (err.code === 'ENOENT')
                return;
            throw err;
        }
        const moved = await this.read(aside);
        const same = moved !== 'missing' && (moved === undefined ? stale === undefined : moved.pid === stale?.pid);
        if (same) {
            await fs.rm(aside, { force: true });
            return;
        }
        // Someone took the lock between our read and the rename: give it back.
        try {
            await fs.link(aside, this.file);
        }
        catch {
            // A third party holds it now; theirs wins.
        }
        await fs.rm(aside, { force: true });
        throw new ApplyLockedError(this.file, moved !== 'missing' ? moved?.pid : undefined);
    }
}
//# sourceMappingURL=lock.js.map