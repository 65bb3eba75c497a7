import type { CallRecord } from './records.js';

/** The CSV columns, in order: header text and the record field each one shows. */
export const CSV_COLUMNS: readonly { header: string; field: keyof CallRecord }[] = [
  { header: 'Interaction ID', field: 'interactionId' },
  { header: 'Call Type', field: 'callType' },
  { header: 'Agent ID', field: 'agentId' },
  { header: 'Agent Username', field: 'agentUsername' },
  { header: 'Date & Time', field: 'startedAt' },
  { header: 'Caller Number', field: 'callerNumber' },
  { header: 'Called Number', field: 'calledNumber' },
  { header: 'Duration (s)', field: 'durationSeconds' },
  { header: 'Outcome', field: 'outcome' },
  { header: 'Divert Reason', field: 'divertReason' },
  { header: 'Recording Status', field: 'recordingStatus' },
  { header: 'Recording Name', field: 'recordingName' },
  { header: 'Recording File', field: 'recordingFile' },
  { header: 'Email Status', field: 'emailStatus' },
  { header: 'Note', field: 'note' },
];

/**
 * Call records as CSV (RFC 4180): a header row, CRLF line ends, fields quoted when they hold a
 * comma, quote, CR or LF, quotes doubled. Spreadsheet formula injection is neutralised: a cell
 * that starts with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'` (OWASP's advice), and so does
 * one where such a character follows leading white space (` =1+2`: some spreadsheets trim cells on
 * import), unless the whole cell is a plain number such as a caller number `+61299998888` or
 * `-5`, which a spreadsheet cannot run. Caller numbers count as free text: caller id arrives from
 * outside.
 */
export function recordsToCsv(records: readonly CallRecord[]): string {
  const lines = [CSV_COLUMNS.map((c) => csvCell(c.header)).join(',')];
  for (const record of records) {
    lines.push(CSV_COLUMNS.map((c) => csvCell(record[c.field])).join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

const FORMULA_START = /^[\s\u0000-\u001f]*[=+\-@]|^[\t\r]/;
const PLAIN_NUMBER = /^[+-]?\d+(\.\d+)?$/;

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  let text = String(value);
  if (FORMULA_START.test(text) && !PLAIN_NUMBER.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
