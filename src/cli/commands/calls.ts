import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { CALL_TYPES, CallRecords, defaultCallQueryRange, recordsToCsv, type CallRecord, type CallType } from '../../calls/records.js';
import { formatDuration } from '../../mail/voicemail-email.js';
import { SwitchboardError } from '../../errors.js';
import { EXIT } from '../exit-codes.js';

export const DEFAULT_DATA_DIR = './var';

interface Args { from?: string; to?: string; agent?: string; type?: string; json?: boolean; csv?: boolean; data: string }

/**
 * The call-records database of a data directory, opened read-only: nothing is created, migrated or
 * locked, so this works for a user who may only read the directory and never holds up the daemon.
 * Refuses a directory without one.
 */
export function openCallRecords(dataDir: string): CallRecords {
  const file = join(dataDir, 'calls.sqlite');
  if (!existsSync(file)) {
    throw new SwitchboardError('USAGE', `no call records in ${dataDir} (${file} does not exist): give the daemon's data directory with --data`);
  }
  return CallRecords.openReadOnly(file);
}

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** ISO 8601 / RFC 3339 date-time: a time (seconds and fraction optional) and a zone (Z or ±hh:mm). */
const DATE_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(2001, month, 0)).getUTCDate() + (month === 2 && isLeapYear(year) ? 1 : 0);
}
function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/**
 * `--from`/`--to`: `YYYY-MM-DD`, a whole day in this machine's local time zone (`TZ`), from its
 * first millisecond for --from to its last for --to; or an ISO 8601 date-time with a time and a
 * zone, `2024-05-01T09:30:00+10:00` or `2024-05-01T09:30Z`, that instant. Anything else (`2024-05`,
 * `1`, `yesterday`, a date-time without a zone) is refused, naming the flag, the value and an example.
 */
export function parseDateArg(value: string, edge: 'start' | 'end', name: string): Date {
  const refuse = (why?: string): SwitchboardError =>
    new SwitchboardError(
      'USAGE',
      `--${name} "${value}" is not a date${why ? ` (${why})` : ''}: use YYYY-MM-DD (a whole day, local time) or an ISO 8601 date-time with a time zone, e.g. --${name} 2024-05-01 or --${name} 2024-05-01T09:30:00+10:00`,
    );
  const text = value.trim();
  const day = DAY_RE.exec(text);
  if (day) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    if (m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) throw refuse('no such day');
    const date = new Date(2000, 0, 1);
    date.setFullYear(y, m - 1, d); // setFullYear: years 0-99 are not taken for 1900-1999
    if (edge === 'start') date.setHours(0, 0, 0, 0);
    else date.setHours(23, 59, 59, 999);
    return date;
  }
  const dt = DATE_TIME_RE.exec(text);
  if (!dt) {
    if (/^\d{4}-\d{2}-\d{2}[Tt ]\d/.test(text)) throw refuse('a date-time needs the form YYYY-MM-DDThh:mm[:ss] and a time zone');
    throw refuse();
  }
  const [y, mo, d, h, mi] = [1, 2, 3, 4, 5].map((i) => Number(dt[i]));
  const sec = dt[6] !== undefined ? Number(dt[6]) : 0;
  const ms = dt[7] !== undefined ? Number(dt[7].slice(0, 3).padEnd(3, '0')) : 0;
  if (!dt[8] && !dt[9]) throw refuse('no time zone: add Z for UTC or an offset such as +10:00');
  const [oh, om] = dt[9] ? [Number(dt[10]), Number(dt[11])] : [0, 0];
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > daysInMonth(y!, mo!)) throw refuse('no such day');
  if (h! > 23 || mi! > 59 || sec > 59) throw refuse('no such time');
  if (oh > 23 || om > 59) throw refuse('no such time zone offset');
  const utc = new Date(0);
  utc.setUTCFullYear(y!, mo! - 1, d!);
  utc.setUTCHours(h!, mi!, sec, ms);
  const offsetMs = (dt[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  return new Date(utc.getTime() - offsetMs);
}

/** `direct`, `diverted` or the full names ("Direct Agent Call", "Diverted Call"), any case. */
export function parseCallType(value: string): CallType {
  const v = value.trim().toLowerCase();
  const found = CALL_TYPES.find((t) => t.toLowerCase() === v || t.toLowerCase().split(' ')[0] === v);
  if (!found) throw new SwitchboardError('USAGE', `--type "${value}" is not a call type: use direct ("Direct Agent Call") or diverted ("Diverted Call")`);
  return found;
}

const pad = (n: number): string => String(n).padStart(2, '0');
function localTime(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Characters a terminal may act on, in text that comes from outside (caller id, names): C0 and C1
 * controls (U+009B is CSI, which starts an escape sequence on many terminals, as ESC [ does), DEL,
 * the line and paragraph separators U+2028/U+2029, and the bidirectional overrides and isolates
 * that can make text display in another order than it is.
 */
const TERMINAL_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const TERMINAL_UNSAFE_RUNS = new RegExp(`${TERMINAL_UNSAFE.source}+`, 'g');
/** TERMINAL_UNSAFE but C0, which JSON.stringify escapes itself (and whose LF lays out its output). */
const JSON_UNESCAPED_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Free text for the table: each run of TERMINAL_UNSAFE characters becomes one space. */
export function terminalSafe(text: string | undefined): string {
  return (text ?? '').replace(TERMINAL_UNSAFE_RUNS, ' ');
}

/**
 * JSON.stringify leaves C1 controls, U+2028/U+2029 and bidi controls as they are (it escapes only
 * C0); this escapes them as \uXXXX too, which is the same JSON value, safe to print to a terminal.
 */
export function jsonTerminalSafe(json: string): string {
  return json.replace(JSON_UNESCAPED_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Records as a plain-text table (people); terminal control characters in free text become spaces (terminalSafe). */
export function callsTable(records: readonly CallRecord[]): string {
  const clean = terminalSafe;
  const header = ['Interaction ID', 'Date & Time', 'Call Type', 'Agent', 'Caller Number', 'Called Number', 'Duration', 'Outcome', 'Divert Reason', 'Recording', 'Email'];
  const rows = records.map((r) => [
    r.interactionId, localTime(r.startedAt), r.callType, clean(r.agentUsername ?? r.agentId), clean(r.callerNumber), clean(r.calledNumber),
    formatDuration(r.durationSeconds), r.outcome, r.divertReason ?? '', r.recordingStatus, r.emailStatus,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

export const callsCommand: CommandModule<object, Args> = {
  command: 'calls',
  describe: 'List call records (DID calls: answered, diverted to voicemail, abandoned); default: the last seven days',
  builder: (y) =>
    y
      .option('from', {
        type: 'string',
        describe: 'first day or instant, inclusive: YYYY-MM-DD (from 00:00 local time) or an ISO 8601 date-time with a time zone (2024-05-01T09:30:00+10:00, 2024-05-01T09:30Z)',
      })
      .option('to', {
        type: 'string',
        describe: 'last day or instant, inclusive: YYYY-MM-DD (to the end of that day, local time) or an ISO 8601 date-time with a time zone',
      })
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
      .example('$0 calls --from 2024-05-01T09:00:00+10:00 --to 2024-05-01T17:00:00+10:00', 'one working day, given with its time zone')
      .epilog('Days (YYYY-MM-DD) are whole days in this machine\'s local time zone (set TZ to use another); the table shows local times too. A date-time must carry its zone (Z or an offset).')
      .example('$0 calls --from 2024-05-01 --to 2024-05-31 --agent alice.smith --type diverted --csv', 'one agent\'s voicemails in May, as CSV'),
  handler: (args) => {
    const from = args.from !== undefined ? parseDateArg(args.from, 'start', 'from') : undefined;
    const to = args.to !== undefined ? parseDateArg(args.to, 'end', 'to') : undefined;
    const callType = args.type !== undefined ? parseCallType(args.type) : undefined;
    if (from && to && from > to) throw new SwitchboardError('USAGE', `--from (${args.from}) is after --to (${args.to})`);
    const range = from === undefined && to === undefined ? defaultCallQueryRange() : { from, to };
    const records = openCallRecords(args.data);
    let rows: CallRecord[];
    try {
      rows = records.query({ ...(range.from ? { from: range.from } : {}), ...(range.to ? { to: range.to } : {}), ...(callType ? { callType } : {}) });
    } finally {
      records.close();
    }
    if (args.agent !== undefined) rows = rows.filter((r) => r.agentId === args.agent || r.agentUsername === args.agent);
    if (args.json) process.stdout.write(jsonTerminalSafe(JSON.stringify(rows, null, 2)) + '\n');
    else if (args.csv) process.stdout.write(recordsToCsv(rows));
    else {
      const span = `${range.from ? localTime(range.from.toISOString()) : 'the beginning'} to ${range.to ? localTime(range.to.toISOString()) : 'now'}`;
      process.stdout.write(`${rows.length} call(s) from ${span}\n`);
      if (rows.length > 0) process.stdout.write(callsTable(rows));
    }
    process.exitCode = EXIT.OK;
  },
};
