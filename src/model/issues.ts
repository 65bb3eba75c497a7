/**
 * A validation issue: everything a telephony engineer needs to find and fix one problem in the
 * store — the file (and line when the YAML parser knows it), the agent, the field, the value, the
 * rule it breaks and how to fix it.
 */
export type Severity = 'error' | 'warning';

export interface Issue {
  severity: Severity;
  /** Stable machine code, e.g. `FIELD_INVALID`, `DUPLICATE_EXTENSION`. */
  code: string;
  file: string;
  line?: number;
  /** Agent id (or username, or file name when neither is readable). */
  agent?: string;
  /** Dotted path, e.g. `voice.codecs`. */
  field?: string;
  value?: string;
  rule: string;
  fix: string;
  /** One line, ready to print: `file:line: agent "x", field y = "v": rule. Fix: ...` */
  message: string;
}

export type IssueInput = Omit<Issue, 'message' | 'severity'> & { severity?: Severity };

export function formatIssue(i: Omit<Issue, 'message'>): string {
  const where = i.line ? `${i.file}:${i.line}` : i.file;
  const parts: string[] = [];
  if (i.agent) parts.push(`agent "${i.agent}"`);
  if (i.field) parts.push(`field ${i.field}` + (i.value !== undefined ? ` = ${JSON.stringify(i.value)}` : ''));
  const subject = parts.length ? ` ${parts.join(', ')}:` : '';
  return `${where}: ${i.severity}:${subject} ${i.rule}. Fix: ${i.fix}`;
}

export function makeIssue(input: IssueInput): Issue {
  const base = { ...input, severity: input.severity ?? 'error' } as Omit<Issue, 'message'>;
  return { ...base, message: formatIssue(base) };
}

/** Collects issues; validation never stops at the first one. */
export class IssueList {
  readonly items: Issue[] = [];
  add(input: IssueInput): void {
    this.items.push(makeIssue(input));
  }
  push(...issues: Issue[]): void {
    this.items.push(...issues);
  }
  get errors(): Issue[] {
    return this.items.filter((i) => i.severity === 'error');
  }
  get warnings(): Issue[] {
    return this.items.filter((i) => i.severity === 'warning');
  }
  get hasErrors(): boolean {
    return this.items.some((i) => i.severity === 'error');
  }
}

/** Shows a value in a message without ever printing a secret or an endless blob. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
