import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CALL_TYPES, CallRecords, defaultCallQueryRange, recordsToCsv } from '../../calls/records.js';
import { formatDuration } from '../../mail/voicemail-email.js';
import { SwitchboardError } from '../../errors.js';
import { EXIT } from '../exit-codes.js';
export const DEFAULT_DATA_DIR = './var';
/** The call-records database of a data directory; refuses a directory without one (nothing is created). */
export function openCallRecords(dataDir) {
    const file = join(dataDir, 'calls.sqlite');
    if (!existsSync(file)) {
        throw new SwitchboardError('USAGE', `no call records in ${dataDir} (${file} does not exist): give the daemon's data directory with --data`);
    }
    return CallRecords.open(file);
}
/** `2024-05-01` (a whole day, local time: start for --from, end for --to) or any ISO 8601 date-time. */
export function parseDateArg(value, edge, name) {
    const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
    let date;
    if (day) {
        const [y, m, d] = [Number(day[1]), Number(day[2]) - 1, Number(day[3])];
        date = edge === 'start' ? new Date(y, m, d, 0, 0, 0, 0) : new Date(y, m, d, 23, 59, 59, 999);
        if (date.getMonth() !== m || date.getDate() !== d)
            date = new Date(NaN);
    }
    else {
        date = new Date(value);
    }
    if (Number.isNaN(date.getTime())) {
        throw new SwitchboardError('USAGE', `--${name} "${value}" is not a date: use YYYY-MM-DD or an ISO 8601 date-time such as 2024-05-01T09:30:00+10:00`);
    }
    return date;
}
/** `direct`, `diverted` or the full names ("Direct Agent Call", "Diverted Call"), any case. */
export function parseCallType(value) {
    const v = value.trim().toLowerCase();
    const found = CALL_TYPES.find((t) => t.toLowerCase() === v || t.toLowerCase().split(' ')[0] === v);
    if (!found)
        throw new SwitchboardError('USAGE', `--type "${value}" is not a call type: use direct ("Direct Agent Call") or diverted ("Diverted Call")`);
    return found;
}
const pad = (n) => String(n).padStart(2, '0');
function localTime(iso) {
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
/** Records as a plain-text table (people); control characters in free text become spaces. */
export function callsTable(records) {
    const clean = (s) => (s ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ');
    const header = ['Interaction ID', 'Date & Time', 'Call Type', 'Agent', 'Caller Number', 'Called Number', 'Duration', 'Outcome', 'Divert Reason', 'Recording', 'Email'];
    const rows = records.map((r) => [
        r.interactionId, localTime(r.startedAt), r.callType, clean(r.agentUsername ?? r.agentId), clean(r.callerNumber), clean(r.calledNumber),
        formatDuration(r.durationSeconds), r.outcome, r.divertReason ?? '', r.recordingStatus, r.emailStatus,
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
    return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}
export const callsCommand = {
    command: 'calls',
    describe: 'List call records (DID calls: answered, diverted to voicemail, abandoned); default: the last seven days',
    builder: (y) => y
        .option('from', { type: 'string', describe: 'first day or date-time (YYYY-MM-DD or ISO 8601), inclusive' })
        .option('to', { type: 'string', describe: 'last day or date-time (YYYY-MM-DD or ISO 8601), inclusive' })
        .option('agent', { type: 'string', describe: 'only this agent (id or username)' })
        .option('type', { type: 'string', describe: 'only this call type: direct ("Direct Agent Call") or diverted ("Diverted Call")' })
        .option('json', { type: 'boolean', describe: 'print the records as a JSON array' })
        .option('csv', { type: 'boolean', describe: 'print the records as CSV (RFC 4180)' })
        .option('data', {
        type: 'string',
        default: process.env.SWITCHBOARD_DATA_DIR || DEFAULT_DATA_DIR,
        defaultDescription: '$SWITCHBOARD_DATA_DIR, else ./var',
        describe: 'the daemon\'s data directory (holds calls.sqlite)',
    })
        .conflicts('json', 'csv')
        .example('$0 calls', 'the last seven days, as a table')
        .example('$0 calls --from 2024-05-01 --to 2024-05-31 --agent alice.smith --type diverted --csv', 'one agent\'s voicemails in May, as CSV'),
    handler: (args) => {
        const from = args.from !== undefined ? parseDateArg(args.from, 'start', 'from') : undefined;
        const to = args.to !== undefined ? parseDateArg(args.to, 'end', 'to') : undefined;
        const callType = args.type !== undefined ? parseCallType(args.type) : undefined;
        if (from && to && from > to)
            throw new SwitchboardError('USAGE', `--from (${args.from}) is after --to (${args.to})`);
        const range = from === undefined && to === undefined ? defaultCallQueryRange() : { from, to };
        const records = openCallRecords(args.data);
        let rows;
        try {
            rows = records.query({ ...(range.from ? { from: range.from } : {}), ...(range.to ? { to: range.to } : {}), ...(callType ? { callType } : {}) });
        }
        finally {
            records.close();
        }
        if (args.agent !== undefined)
            rows = rows.filter((r) => r.agentId === args.agent || r.agentUsername === args.agent);
        if (args.json)
            process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        else if (args.csv)
            process.stdout.write(recordsToCsv(rows));
        else {
            const span = `${range.from ? localTime(range.from.toISOString()) : 'the beginning'} to ${range.to ? localTime(range.to.toISOString()) : 'now'}`;
            process.stdout.write(`${rows.length} call(s) from ${span}\n`);
            if (rows.length > 0)
                process.stdout.write(callsTable(rows));
        }
        process.exitCode = EXIT.OK;
    },
};
//# sourceMappingURL=calls.js.map