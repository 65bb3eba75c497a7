import { constants, existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { SwitchboardError, errorMessage } from '../../errors.js';
import { EXIT } from '../exit-codes.js';
import { DEFAULT_DATA_DIR, openCallRecords } from './calls.js';
/** The kept recording of a call cannot be given (no such call, none taken, deleted, file gone). */
export class RecordingUnavailableError extends SwitchboardError {
    constructor(interactionId, message) {
        super('RECORDING_UNAVAILABLE', message, { interactionId });
    }
}
/** Finds the kept recording of a call; throws RecordingUnavailableError saying why there is none. */
export function recordingFileOf(dataDir, interactionId) {
    const records = openCallRecords(dataDir);
    try {
        const record = records.get(interactionId);
        if (!record)
            throw new RecordingUnavailableError(interactionId, `no call with interaction id "${interactionId}" in ${dataDir} (see switchboard calls)`);
        if (record.recordingStatus === 'deleted') {
            throw new RecordingUnavailableError(interactionId, `the recording of call ${interactionId} was deleted`);
        }
        if (record.recordingStatus !== 'available' || !record.recordingFile) {
            throw new RecordingUnavailableError(interactionId, `call ${interactionId} has no recording (outcome: ${record.outcome})`);
        }
        let file = path.resolve(dataDir, record.recordingFile);
        // The data directory may have moved since the daemon wrote the record: look in its recordings/.
        const moved = path.join(dataDir, 'recordings', path.basename(record.recordingFile));
        if (!existsSync(file) && existsSync(moved))
            file = moved;
        if (!existsSync(file)) {
            throw new RecordingUnavailableError(interactionId, `the recording of call ${interactionId} is missing: ${file} does not exist (was it deleted by hand?)`);
        }
        return file;
    }
    finally {
        records.close();
    }
}
export const recordingCommand = {
    command: 'recording <interaction-id>',
    describe: 'Copy the kept voicemail recording of a call to a file',
    builder: (y) => y
        .positional('interaction-id', { type: 'string', demandOption: true, describe: 'the call\'s interaction id (see switchboard calls)' })
        .option('out', { type: 'string', demandOption: true, describe: 'file to write (e.g. 20240501_0930_<id>.wav)' })
        .option('force', { type: 'boolean', default: false, describe: 'overwrite --out if it exists' })
        .option('data', {
        type: 'string',
        default: process.env.SWITCHBOARD_DATA_DIR || DEFAULT_DATA_DIR,
        defaultDescription: '$SWITCHBOARD_DATA_DIR, else ./var',
        describe: 'the daemon\'s data directory (holds calls.sqlite and recordings/)',
    })
        .example("$0 recording 1714555800000000123 --out message.wav", "save one voicemail"),
    handler: async (args) => {
        let file;
        try {
            file = recordingFileOf(args.data, args.interactionId);
        }
        catch (err) {
            if (!(err instanceof RecordingUnavailableError))
                throw err;
            process.stderr.write(`switchboard: ${err.message}\n`);
            process.exitCode = EXIT.INVALID_OR_DIFFERENT;
            return;
        }
        try {
            await copyFile(file, args.out, args.force ? 0 : constants.COPYFILE_EXCL);
        }
        catch (err) {
            const code = err.code;
            const why = code === 'EEXIST' ? `${args.out} exists (use --force to overwrite)` : errorMessage(err);
            throw new SwitchboardError('USAGE', `cannot write ${args.out}: ${why}`);
        }
        process.stdout.write(`recording of call ${args.interactionId} written to ${args.out}\n`);
        process.exitCode = EXIT.OK;
    },
};
//# sourceMappingURL=recording.js.map