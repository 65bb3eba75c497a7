import { IssueList, showValue } from './issues.js';

/** A parsed YAML file: plain data plus a way to find the line of any key path. */
export interface SourceDoc {
  /** Path shown in messages (relative to the store when possible). */
  file: string;
  data: unknown;
  lineOf(path: readonly (string | number)[]): number | undefined;
  /** The scalar's text as written in the file (e.g. `0100` where the data holds 100). */
  sourceOf?(path: readonly (string | number)[]): string | undefined;
}

type Path = readonly (string | number)[];

interface Common {
  rule: string;
  fix: string;
}

/**
 * Reads typed fields out of one YAML document and records an issue (file, line, agent, field,
 * value, rule, fix) for each bad one instead of throwing, so validation reports everything at once.
 */
export class FieldReader {
  constructor(
    readonly doc: SourceDoc,
    readonly issues: IssueList,
    public agent: string | undefined,
  ) {}

  get(path: Path): unknown {
    let cur: unknown = this.doc.data;
    for (const k of path) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string | number, unknown>)[k];
    }
    return cur;
  }

  has(path: Path): boolean {
    return this.get(path) !== undefined && this.get(path) !== null;
  }

  /** `at`: the key whose line to name when the value did not come from `path` (a default, say). */
  fail(path: Path, value: unknown, rule: string, fix: string, code = 'FIELD_INVALID', severity: 'error' | 'warning' = 'error', at?: Path): void {
    this.issues.add({
      severity,
      code,
      file: this.doc.file,
      line: at ? this.doc.lineOf(at) : this.doc.lineOf(path) ?? this.doc.lineOf(path.slice(0, -1)),
      agent: this.agent,
      field: path.join('.'),
      value: value === undefined ? undefined : showValue(value),
      rule,
      fix,
    });
  }

  warn(path: Path, value: unknown, rule: string, fix: string, code = 'FIELD_WARNING'): void {
    this.fail(path, value, rule, fix, code, 'warning');
  }

  /** Refuses keys that the schema does not know (a typo would otherwise be silently ignored). */
  knownKeys(path: Path, known: readonly string[]): void {
    const obj = path.length ? this.get(path) : this.doc.data;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) {
        const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || similar(k, key));
        this.fail([...path, key], undefined, 'is not a known field', near ? `did you mean "${near}"?` : `remove it; known fields here: ${known.join(', ')}`, 'FIELD_UNKNOWN');
      }
    }
  }

  object(path: Path): boolean {
    const v = this.get(path);
    if (v === undefined || v === null) return false;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.fail(path, v, 'must be a mapping of fields', `write it as "${path.at(-1)}:" followed by indented fields`);
      return false;
    }
    return true;
  }

  /**
   * Text that must match `re`. Numbers are refused with a message saying to quote them: YAML reads
   * an unquoted `0100` as the number 100, which would silently change an extension or a PIN.
   */
  text(path: Path, opts: Common & { re?: RegExp; check?: (s: string) => string | undefined; required?: boolean; numberAsText?: boolean; secret?: boolean }): string | undefined {
    const v = this.get(path);
    // A secret is never echoed, not even when it is malformed.
    const shown = opts.secret ? '********' : v;
    if (v === undefined || v === null || v === '') {
      if (opts.required) this.fail(path, undefined, 'is required', opts.fix, 'FIELD_REQUIRED');
      return undefined;
    }
    if (typeof v === 'number' || typeof v === 'bigint') {
      if (opts.numberAsText) {
        const key = String(path.at(-1));
        const example = opts.secret ? '<the same characters>' : this.source(path) ?? String(v);
        this.fail(path, shown, 'is a number in YAML, so leading zeros and "+" are lost', `quote it as text, e.g. ${key}: "${example}"`, 'NUMBER_NOT_QUOTED');
      } else {
        this.fail(path, shown, 'must be text', opts.fix);
      }
      return undefined;
    }
    if (typeof v !== 'string') {
      this.fail(path, shown, 'must be text', opts.fix);
      return undefined;
    }
    const problem = opts.check?.(v);
    if (problem) {
      this.fail(path, shown, `${opts.rule}: it ${problem}`, opts.fix);
      return undefined;
    }
    if (opts.re && !opts.re.test(v)) {
      this.fail(path, shown, opts.rule, opts.fix);
      return undefined;
    }
    return v;
  }

  bool(path: Path, dflt: boolean): boolean {
    const v = this.get(path);
    if (v === undefined || v === null) return dflt;
    if (typeof v === 'boolean') return v;
    this.fail(path, v, 'must be true or false', `write ${String(path.at(-1))}: true or ${String(path.at(-1))}: false`);
    return dflt;
  }

  int(path: Path, opts: { min: number; max: number; dflt: number; fix?: string }): number {
    const v = this.get(path);
    if (v === undefined || v === null) return opts.dflt;
    if (typeof v === 'number' && Number.isInteger(v) && v >= opts.min && v <= opts.max) return v;
    this.fail(path, v, `must be a whole number from ${opts.min} to ${opts.max}`, opts.fix ?? `use a number such as ${opts.dflt}`);
    return opts.dflt;
  }

  oneOf<T extends string>(path: Path, values: readonly T[], dflt: T): T {
    const v = this.get(path);
    if (v === undefined || v === null) return dflt;
    const known = listed(values, v);
    if (known !== undefined) return known;
    this.fail(path, v, `must be one of ${values.join(', ')}`, `use one of ${values.join(', ')}`);
    return dflt;
  }

  /** A list given either as a YAML sequence or as comma-separated text. */
  list(path: Path): string[] | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v.map((x) => String(x).trim());
    if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
    this.fail(path, v, 'must be a list', `write [a, b] or "a,b"`);
    return undefined;
  }

  /** The raw source text of a scalar, used to echo `0100` back instead of `100`. */
  source(path: Path): string | undefined {
    return this.doc.sourceOf?.(path);
  }
}

function similar(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (Math.abs(x.length - y.length) > 2) return false;
  let diff = 0;
  for (let i = 0; i < Math.max(x.length, y.length); i++) if (x[i] !== y[i]) diff++;
  // Position-by-position misses a dropped or added letter ("backnd"): allow an edit distance of 2 too.
  return diff <= 2 || x.startsWith(y) || y.startsWith(x) || (Math.min(x.length, y.length) >= 4 && editDistance(x, y) <= 2);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * `v` as the list's own string when the list holds that text, else undefined: values read from
 * many agent files then share one copy (the enumeration's) instead of keeping one per file.
 */
export function listed<T extends string>(values: readonly T[], v: unknown): T | undefined {
  const i = typeof v === 'string' ? (values as readonly string[]).indexOf(v) : -1;
  return i === -1 ? undefined : values[i];
}
