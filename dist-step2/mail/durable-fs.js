import { randomBytes } from 'node:crypto';
import { chmod, constants, copyFile, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
/** Prefix of the temporary files `writeFileDurable` / `copyFileDurable` leave behind after a crash. */
export const TEMP_PREFIX = '.tmp-';
/**
 * Writes `target` so that after a crash it either holds all of `data` or does not exist:
 * temp file in the same directory, fsync, rename over `target`, fsync the directory.
 */
export async function writeFileDurable(target, data, mode = 0o600) {
    const temp = tempName(target);
    try {
        const handle = await open(temp, 'wx', mode);
        try {
            await handle.writeFile(data);
            await handle.sync();
        }
        finally {
            await handle.close();
        }
        await rename(temp, target);
    }
    catch (err) {
        await unlink(temp).catch(() => { });
        throw err;
    }
    await fsyncDir(dirname(target));
}
/** Copies `source` to `target` with the same all-or-nothing guarantee as `writeFileDurable`. */
export async function copyFileDurable(source, target, mode = 0o600) {
    const temp = tempName(target);
    try {
        await copyFile(source, temp, constants.COPYFILE_EXCL);
        await chmod(temp, mode);
        const handle = await open(temp, 'r+');
        try {
            await handle.sync();
        }
        finally {
            await handle.close();
        }
        await rename(temp, target);
    }
    catch (err) {
        await unlink(temp).catch(() => { });
        throw err;
    }
    await fsyncDir(dirname(target));
}
/** Renames `from` to `to` and makes the change durable in both directories. */
export async function renameDurable(from, to) {
    await rename(from, to);
    await fsyncDir(dirname(to));
    if (dirname(from) !== dirname(to))
        await fsyncDir(dirname(from));
}
/** fsync a directory, so that entries created, renamed or removed in it survive a power cut. */
export async function fsyncDir(dir) {
    const handle = await open(dir, 'r');
    try {
        await handle.sync();
    }
    finally {
        await handle.close();
    }
}
function tempName(target) {
    return join(dirname(target), `${TEMP_PREFIX}${basename(target)}-${randomBytes(4).toString('hex')}`);
}
//# sourceMappingURL=durable-fs.js.map