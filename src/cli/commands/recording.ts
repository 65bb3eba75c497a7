import { constants, existsSync, statSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { SwitchboardError, errorMessage } from '../../errors.js';
import { EXIT } from '../exit-codes.js';
import { DEFAULT_DATA_DIR, openCallRecords } from './calls.js';

interface Args { interactionId: string; out: string; force: boolean; data: string }

/** The kept recording of a call cannot be given (no such call, none taken, deleted, file gone or unreadable). */
export class RecordingUnavailableError extends SwitchboardError {
  constructor(interactionId: string, message: string) {
    super('RECORDING_UNAVAILABLE', message, { interactionId });
  }
}

function statError(file: string): NodeJS.ErrnoException | undefined {
  try {
    statSync(file);
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/** Finds the kept recording of a call; throws RecordingUnavailableError saying why there is none. */
export function recordingFileOf(dataDir: string, interactionId: string): string {
  const records = openCallRecords(dataDir);
  try {
    const record = records.get(interactionId);
    if (!record) throw new RecordingUnavailableError(interactionId, `no call with interaction id "${interactionId}" in ${dataDir} (see switchboard calls)`);
    if (record.recordingStatus === 'deleted') {
      throw new RecordingUnavailableError(interactionId, `the recording of call ${interactionId} was deleted`);
    }
    if (record.recordingStatus !== 'available' || !record.recordingFile) {
      throw new RecordingUnavailableError(interactionId, `call ${interactionId} has no recording (outcome: ${record.outcome})`);
    }
    let file = path.resolve(dataDir, record.recordingFile);
    // The data directory may have moved since the daemon wrote the record: look in its recordings/.
    const moved = path.join(dataDir, 'recordings', path.basename(record.recordingFile));
    if (!existsSync(file) && existsSync(moved)) file = moved;
    const missing = statError(file);
    if (missing && (missing.code === 'ENOENT' || missing.code === 'ENOTDIR')) {
      throw new RecordingUnavailableError(interactionId, `the recording of call ${interactionId} is missing: ${file} does not exist (was it deleted by hand?)`);
    }
    if (missing) {
      // Not "missing": there, but this user may not look (e.g. a recordings directory only the daemon's user may read).
      throw new RecordingUnavailableError(interactionId, `cannot read the recording of call ${interactionId} (${file}): ${errorMessage(missing)}`);
    }
    return file;
  } finally {
    records.close();
  }
}

/**
 * Copies the stored recording `file` to `out`, saying which side failed: reading the stored
 * recording (RecordingUnavailableError, exit 1: e.g. a user who may not read the daemon's
 * recordings) or writing `out` (USAGE, exit 2: exists without --force, a directory that does not
 * exist or may not be written, a full disk). A partly written `out` is removed.
 */
export async function copyRecording(interactionId: string, file: string, out: string, force: boolean): Promise<void> {
  const cannotRead = (err: unknown): RecordingUnavailableError =>
    new RecordingUnavailableError(interactionId, `cannot read the recording of call ${interactionId} (${file}): ${errorMessage(err)}`);
  const cannotWrite = (err: unknown): SwitchboardError => {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' ? `${out} exists (use --force to overwrite)` : errorMessage(err);
    return new SwitchboardError('USAGE', `cannot write ${out}: ${why}`);
  };
  let src: FileHandle;
  try {
    src = await open(file, 'r');
  } catch (err) {
    throw cannotRead(err);
  }
  try {
    let dst: FileHandle;
    try {
      // --force: not truncated before it is known not to be the stored recording itself.
      dst = await open(out, force ? constants.O_WRONLY | constants.O_CREAT : 'wx', 0o644);
    } catch (err) {
      throw cannotWrite(err);
    }
    // Removed if the copy fails once it was created or emptied here (never a file left as it was).
    let removeOnFailure = !force;
    let done = false;
    try {
      if (force) {
        const [a, b] = await Promise.all([src.stat(), dst.stat()]);
        if (a.dev === b.dev && a.ino === b.ino) {
          throw new SwitchboardError('USAGE', `cannot write ${out}: it is the stored recording itself (${file})`);
        }
        try {
          await dst.truncate(0);
        } catch (err) {
          throw cannotWrite(err);
        }
        removeOnFailure = true;
      }
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        let n: number;
        try {
          ({ bytesRead: n } = await src.read(buf, 0, buf.length, null));
        } catch (err) {
          throw cannotRead(err);
        }
        if (n === 0) break;
        try {
          for (let off = 0; off < n; ) off += (await dst.write(buf, off, n - off)).bytesWritten;
        } catch (err) {
          throw cannotWrite(err);
        }
      }
      try {
        await dst.close();
      } catch (err) {
        throw cannotWrite(err);
      }
      done = true;
    } finally {
      if (!done && removeOnFailure) await rm(out, { force: true }).catch(() => {});
      await dst.close().catch(() => {});
    }
  } finally {
    await src.close().catch(() => {});
  }
}

export const recordingCommand: CommandModule<object, Args> = {
  command: 'recording <interaction-id>',
  describe: 'Copy the kept voicemail recording of a call to a file',
  builder: (y) =>
    y
      .positional('interaction-id', { type: 'string', demandOption: true, describe: 'the call\'s interaction id (see switchboard calls)' })
      .option('out', { type: 'string', demandOption: true, describe: 'file to write (e.g. 20240501_0930_<id>.wav)' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --out if it exists' })
      .option('data', {
        type: 'string',
        default: process.env.SWITCHBOARD_DATA_DIR || DEFAULT_DATA_DIR,
        defaultDescription: '$SWITCHBOARD_DATA_DIR, else ./var',
        describe: 'the daemon\'s data directory (holds calls.sqlite and recordings/)',
      })
      .example("$0 recording 1714555800000000123 --out message.wav", "save one voicemail") as unknown as Argv<Args>,
  handler: async (args) => {
    let file: string;
    try {
      file = recordingFileOf(args.data, args.interactionId);
    } catch (err) {
      if (!(err instanceof RecordingUnavailableError)) throw err;
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exitCode = EXIT.INVALID_OR_DIFFERENT;
      return;
    }
    try {
      await copyRecording(args.interactionId, file, args.out, args.force);
    } catch (err) {
      if (!(err instanceof RecordingUnavailableError)) throw err;
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exitCode = EXIT.INVALID_OR_DIFFERENT;
      return;
    }
    process.stdout.write(`recording of call ${args.interactionId} written to ${args.out}\n`);
    process.exitCode = EXIT.OK;
  },
};
