import { SwitchboardError } from '../errors.js';

/**
 * Re-reads rendered config and proves its shape: every line is blank, a comment, a section
 * header, `key = value` or `key => value`; nothing starts with `#` (directive); no `;` hides inside
 * a value; and a chunk opens only the sections it is allowed to. A value that smuggled a newline,
 * `[section]` or `#include` past the model would fail here rather than reach Asterisk.
 */
export interface ChunkRules {
  /** Section names this chunk may open (exact). */
  sections: NameSet;
  /** When set, every `key => value` line's first field must be one of these (dialplan/voicemail). */
  arrowKeys?: NameSet;
}

/** What the checker asks of a set of names (a Set, or a cheaper object with the same answer). */
export interface NameSet {
  has(name: string): boolean;
}

/**
 * The names of one chunk: `prefix` + one of `list` + one of `suffixes` (exactly). The renderer
 * gives every chunk's rules as these (pointing one instance at each agent in turn), so that the
 * checker's calls to has() always meet the same class: a Set here, a custom class there made V8
 * optimise the checker again each time a new kind turned up during a cold render.
 */
export class Names implements NameSet {
  constructor(
    public list: readonly string[] = [],
    readonly prefix = '',
    readonly suffixes: readonly string[] = NO_SUFFIX,
  ) {}

  private readonly single: string[] = [''];

  /** Points the rules at one name (the renderer does this for each agent in turn, without a new array). */
  only(name: string): void {
    this.single[0] = name;
    this.list = this.single;
  }

  has(n: string): boolean {
    const p = this.prefix;
    if (p !== '' && !n.startsWith(p)) return false;
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const x = list[i]!;
      if (!n.startsWith(x, p.length)) continue;
      const rest = n.length - p.length - x.length;
      const suffixes = this.suffixes;
      for (let k = 0; k < suffixes.length; k++) {
        const sfx = suffixes[k]!;
        if (sfx.length === rest && (rest === 0 || n.endsWith(sfx))) return true;
      }
    }
    return false;
  }
}
const NO_SUFFIX: readonly string[] = [''];

const SECTION = /^\[([A-Za-z0-9_.+-]+)\](\((\+|!|[A-Za-z0-9_,!-]+)\))?$/;
const ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*) = (\S.*)$/;
const ARROW = /^ ?([A-Za-z0-9_+*#-]+) => (\S.*)$/;

/**
 * A line as a problem message may quote it: the value of a secret (SIP password or digest,
 * voicemail PIN) is replaced, so that a template mistake never puts secrets into a log.
 */
function shown(line: string): string {
  return line
    .replace(/^(\s*(?:password|secret|md5secret|md5_cred)\s*=>?\s*).*$/i, '$1<hidden>')
    .replace(/^(\s*[0-9]+\s*=>\s*)[^,]*/, '$1<hidden>');
}

export function checkChunk(text: string, rules: ChunkRules, where: string): string[] {
  // Almost every chunk is clean: prove that in one pass, and go line by line only when it is not.
  return chunkIsClean(text, rules) ? [] : checkLines(text, rules, where);
}

/** The rules, line by line, with a message for every problem (checkChunk without its fast path). */
export function checkLines(text: string, rules: ChunkRules, where: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  // Build the location text only for a line with a problem.
  const at = (i: number) => `${where}, line ${i + 1}`;
  lines.forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith(';')) {
      if (line.startsWith(';--')) problems.push(`${at(i)}: block comment opener ";--"`);
      return;
    }
    if (line.startsWith('[')) {
      const m = SECTION.exec(line);
      if (!m) problems.push(`${at(i)}: malformed section header ${JSON.stringify(shown(line))}`);
      else if (!rules.sections.has(m[1]!)) problems.push(`${at(i)}: section [${m[1]}] does not belong here`);
      return;
    }
    if (line.trimStart().startsWith('#')) {
      problems.push(`${at(i)}: directive line ${JSON.stringify(shown(line).slice(0, 80))} (#include, #exec, ...)`);
      return;
    }
    if (/\r/.test(line)) problems.push(`${at(i)}: carriage return in line`);
    // Any ";" not written as "\;" starts a comment that would silently cut the value.
    if (line.includes(';') && /(^|[^\\]);/.test(line)) problems.push(`${at(i)}: ";" inside a value ${JSON.stringify(shown(line))}`);
    if (ASSIGN.test(line)) return;
    const r = ARROW.exec(line);
    if (r) {
      if (rules.arrowKeys) {
        const key = r[1]!;
        const first = r[2]!.split(',')[0]!;
        const subject = key === 'exten' ? first : key === 'same' || key === 'include' ? undefined : key;
        if (subject !== undefined && !rules.arrowKeys.has(subject)) problems.push(`${at(i)}: ${JSON.stringify(subject)} does not belong here`);
      }
      return;
    }
    problems.push(`${at(i)}: not a config line ${JSON.stringify(shown(line).slice(0, 80))}`);
  });
  return problems;
}

/**
 * Every line of a clean chunk, as one pattern: a comment not opening a ";--" block, a section
 * header, `key = value` or ` key => value` (no directive key; the value starts with a non-space
 * and holds no line terminator and no ";" unless written "\;"), or an empty line.
 */
// Written as a plain run of value characters followed by runs that each start at an escaped ";"
// (the same language as `[^\s;](?:[^;\n\r\u2028\u2029]|(?<=\\);)*`): a class repeated alone is
// a tight loop for V8's regexp engine, where an alternation inside the repeat is a step (and a
// backtrack entry) per character: the first pass of a cold render over 14 MB took ~47 ms that
// way, against ~15 ms.
const VALUE = String.raw`[^\s;][^;\n\r\u2028\u2029]*(?:(?<=\\);[^;\n\r\u2028\u2029]*)*`;
const CLEAN = new RegExp(
  String.raw`^(?:(?:;(?!--)[^\n]*|\[[A-Za-z0-9_.+-]+\](?:\((?:\+|!|[A-Za-z0-9_,!-]+)\))?|[A-Za-z_][A-Za-z0-9_]* = ${VALUE}| ?[A-Za-z0-9_+*-][A-Za-z0-9_+*#-]* => ${VALUE}|)(?:\n|$))*$`,
);

/**
 * True when checkChunk would find no problem in `text`: one pattern proves every line
 * well-formed, then only the section headers and `=>` lines are looked at for the names they
 * use. No line array and no message is built. When it answers false, the line-by-line rules
 * (checkLines) decide and say why; it never answers true for text those rules refuse.
 */
export function chunkIsClean(text: string, rules: ChunkRules): boolean {
  return CLEAN.test(text) && new NameScanner(text).clean(0, text.length, rules);
}

/**
 * True when every line of `text` is well-formed (chunkIsClean without the name rules). For text
 * made of several chunks that each start at the beginning of a line, this is true exactly when it
 * is true for each chunk: the lines are the same.
 */
export function linesAreClean(text: string): boolean {
  return CLEAN.test(text);
}

/**
 * chunkIsClean's name rules for chunks of one text: clean(from, to, rules) answers for the chunk
 * text[from, to), which must start at the beginning of a line, end at the end of a line (or of
 * text) and have passed linesAreClean (alone or as part of the text): its section headers and
 * `=>` lines use only the names the rules allow. Chunks are asked in order; the scanner remembers
 * where the next "[" and " => " are, so a block of many chunks is searched once.
 */
export class NameScanner {
  /** Where the next "[" and " => " are (-1: none left; -2: not searched yet). */
  private bracket = -2;
  private arrow = -2;

  constructor(private readonly text: string) {}

  clean(from: number, to: number, rules: ChunkRules): boolean {
    const text = this.text;
    // Section headers: a "[" that starts a line (the pattern proved the line is a header).
    let i = this.bracket;
    if (i === -2 || (i !== -1 && i < from)) i = text.indexOf('[', from);
    for (; i !== -1 && i < to; i = text.indexOf('[', i + 1)) {
      if (i > from && text.charCodeAt(i - 1) !== 10) continue;
      if (!rules.sections.has(text.slice(i + 1, text.indexOf(']', i)))) {
        this.bracket = i;
        return false;
      }
    }
    this.bracket = i;
    const keys = rules.arrowKeys;
    if (!keys) return true;
    // `key => value` lines: the first " => " of a line that comes right after the key (in a
    // `key = value` line the first space is the one before "=").
    let p = this.arrow;
    if (p === -2 || (p !== -1 && p < from)) p = text.indexOf(' => ', from);
    while (p !== -1 && p < to) {
      const start = Math.max(from, text.lastIndexOf('\n', p) + 1);
      const c0 = text.charCodeAt(start);
      const key = c0 === 32 ? start + 1 : start;
      if (c0 !== 59 /* ; */ && text.indexOf(' ', key) === p) {
        const len = p - key;
        let subject: string | undefined;
        if (len === 5 && text.startsWith('exten', key)) {
          let end = text.indexOf('\n', p);
          if (end === -1 || end > to) end = to;
          const comma = text.indexOf(',', p + 4);
          subject = text.slice(p + 4, comma === -1 || comma > end ? end : comma);
        } else if (!((len === 4 && text.startsWith('same', key)) || (len === 7 && text.startsWith('include', key)))) {
          subject = text.slice(key, p);
        }
        if (subject !== undefined && !keys.has(subject)) {
          this.arrow = p;
          return false;
        }
      }
      // A later " => " on the same line is in its value: its line's first space is not before it,
      // so it is passed over like any such line.
      p = text.indexOf(' => ', p + 4);
    }
    this.arrow = p;
    return true;
  }
}

export class RenderCheckError extends SwitchboardError {
  constructor(readonly problems: string[]) {
    super('RENDER_CHECK_FAILED', `rendered config failed the safety check (nothing was written):\n  - ${problems.slice(0, 20).join('\n  - ')}\nIf you use --templates, check the named template; otherwise report this as a bug`, { problems });
  }
}
