import { SwitchboardError } from '../errors.js';

/**
 * Re-reads rendered config and proves its shape: every line is blank, a comment, a section
 * header, `key = value` or `key => value`; nothing starts with `#` (directive); no `;` hides inside
 * a value; and a chunk opens only the sections it is allowed to. A value that smuggled a newline,
 * `[section]` or `#include` past the model would fail here rather than reach Asterisk. An agent's
 * own text (rules with `agent`) may also hold no `include =>` line and no `${SHELL(` (outside a
 * SIP secret, which Asterisk never evaluates), and its dialplan no System() or TrySystem(): none
 * of the stock templates writes them, so there they could only come from a value.
 */
export interface ChunkRules {
  /** Section names this chunk may open (exact). */
  sections: NameSet;
  /** When set, every `key => value` line's first field must be one of these (dialplan/voicemail). */
  arrowKeys?: NameSet;
  /** Set for an agent's own chunk: 'dialplan' for extensions_switchboard.conf, 'config' for the other files. */
  agent?: 'config' | 'dialplan';
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
/** `${SHELL(` in any case and spacing (Asterisk would run the command when it evaluates the line). */
const SHELL_CALL = /\$\{[ \t]*shell[ \t]*\(/i;
/** The System() and TrySystem() applications, in any case and spacing. */
const SYSTEM_APP = /system[ \t]*\(/i;

/** A SIP secret's line: Asterisk never evaluates a secret, and the password policy allows "$", "{" and "(". */
const SECRET_LINE = /^\s*(?:password|secret|md5secret|md5_cred)\s*=/i;

/** What an agent's line may not hold (see ChunkRules.agent), or undefined. */
function forbidden(line: string, agent: 'config' | 'dialplan'): string | undefined {
  if (SHELL_CALL.test(line) && (agent === 'dialplan' || !SECRET_LINE.test(line))) return 'the SHELL() function (it runs a command)';
  if (agent === 'dialplan' && SYSTEM_APP.test(line)) return 'the System() or TrySystem() application (it runs a command)';
  return undefined;
}
const ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*) = (\S.*)$/;
const ARROW = /^ ?([A-Za-z0-9_+*#-]+) => (\S.*)$/;

/**
 * A line as a problem message may quote it: the value of a secret (SIP password or digest,
 * voicemail PIN) is replaced, so that a template mistake never puts secrets into a log.
 */
function shown(line: string): string {
  return line
    .replace(/^(\s*(?:password|secret|md5secret|md5_cred)\s*=>?\s*).*$/i, '$1<hidden>')
    // A mailbox line's first field is its PIN, whatever its key (a smuggled extension may not be digits).
    .replace(/^(\s*(?!#|(?:exten|same)\s*=>)[A-Za-z0-9_+*#-]+\s*=>\s*)[^,]*/i, '$1<hidden>');
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
    const bad = rules.agent ? forbidden(line, rules.agent) : undefined;
    if (bad) problems.push(`${at(i)}: ${bad} in an agent's text ${JSON.stringify(shown(line).slice(0, 80))}`);
    if (ASSIGN.test(line)) return;
    const r = ARROW.exec(line);
    if (r) {
      const key = r[1]!;
      if (rules.agent && key.toLowerCase() === 'include') {
        problems.push(`${at(i)}: "include =>" in an agent's text (it would pull another context in) ${JSON.stringify(shown(line).slice(0, 80))}`);
      } else if (rules.arrowKeys) {
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
  /** Where the next "[", " => ", `${SHELL(` and (dialplan) SHELL_CALL or SYSTEM_APP are (-1: none left; -2: not searched yet). */
  private bracket = -2;
  private arrow = -2;
  private shell = -2;
  private command = -2;

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
    const agent = rules.agent;
    if (agent !== undefined && !this.harmless(from, to, agent === 'dialplan')) return false;
    const keys = rules.arrowKeys;
    if (!keys && agent === undefined) return true;
    // `key => value` lines: the first " => " of a line that comes right after the key (in a
    // `key = value` line the first space is the one before "=").
    let p = this.arrow;
    if (p === -2 || (p !== -1 && p < from)) p = nextArrow(text, from);
    while (p !== -1 && p < to) {
      const start = Math.max(from, text.lastIndexOf('\n', p) + 1);
      const c0 = text.charCodeAt(start);
      const key = c0 === 32 ? start + 1 : start;
      if (c0 !== 59 /* ; */ && text.indexOf(' ', key) === p) {
        const len = p - key;
        let subject: string | undefined;
        if (agent !== undefined && len === 7 && text.slice(key, p).toLowerCase() === 'include') {
          this.arrow = p;
          return false;
        } else if (!keys) {
          // An agent's pjsip/sip text: only include lines are looked at.
        } else if (len === 5 && text.startsWith('exten', key)) {
          let end = text.indexOf('\n', p);
          if (end === -1 || end > to) end = to;
          const comma = text.indexOf(',', p + 4);
          subject = text.slice(p + 4, comma === -1 || comma > end ? end : comma);
        } else if (!((len === 4 && text.startsWith('same', key)) || (len === 7 && text.startsWith('include', key)))) {
          subject = text.slice(key, p);
        }
        if (subject !== undefined && !keys!.has(subject)) {
          this.arrow = p;
          return false;
        }
      }
      // A later " => " on the same line is in its value: its line's first space is not before it,
      // so it is passed over like any such line.
      p = nextArrow(text, p + 4);
    }
    this.arrow = p;
    return true;
  }

  /**
   * True when text[from, to) holds no `${SHELL(` and, for dialplan, no System( or TrySystem( (any
   * case and spacing: SHELL_CALL and SYSTEM_APP). The text is searched once however many chunks
   * ask (matches are rare: the next one is remembered). A match in a comment or a SIP secret also
   * answers false; checkLines then decides.
   */
  private harmless(from: number, to: number, dialplan: boolean): boolean {
    if (dialplan) {
      let q = this.command;
      if (q === -2 || (q !== -1 && q < from)) q = this.command = nextMatch(DIALPLAN_SEARCH, this.text, from);
      return q === -1 || q >= to;
    }
    let d = this.shell;
    if (d === -2 || (d !== -1 && d < from)) d = this.shell = nextShell(this.text, from);
    return d === -1 || d >= to;
  }
}

/** SHELL_CALL or SYSTEM_APP, to search a dialplan text with (one pass finds either). */
const DIALPLAN_SEARCH = new RegExp(`${SHELL_CALL.source}|${SYSTEM_APP.source}`, 'gi');
function nextMatch(re: RegExp, text: string, from: number): number {
  re.lastIndex = from;
  const m = re.exec(text);
  return m === null ? -1 : m.index;
}

/**
 * Where the next " => " starts in text from `from` on, or -1. Found by its ">", which is rare in
 * config (caller ids only), where searching " => " itself would stop at every space.
 */
function nextArrow(text: string, from: number): number {
  for (let q = text.indexOf('>', from + 2); q !== -1; q = text.indexOf('>', q + 1)) {
    if (text.charCodeAt(q - 1) === 61 /* = */ && text.charCodeAt(q - 2) === 32 && text.charCodeAt(q + 1) === 32) return q - 2;
  }
  return -1;
}

/** Where the next `${SHELL(` (as SHELL_CALL) starts in text from `from` on, or -1 (config has no "${" at all). */
function nextShell(text: string, from: number): number {
  for (let d = text.indexOf('${', from); d !== -1; d = text.indexOf('${', d + 2)) {
    let k = d + 2;
    while (isBlank(text.charCodeAt(k))) k++;
    // "shell" in any case: each letter's code with the case bit set.
    if ((text.charCodeAt(k) | 32) !== 115 || (text.charCodeAt(k + 1) | 32) !== 104 || (text.charCodeAt(k + 2) | 32) !== 101 ||
      (text.charCodeAt(k + 3) | 32) !== 108 || (text.charCodeAt(k + 4) | 32) !== 108) continue;
    k += 5;
    while (isBlank(text.charCodeAt(k))) k++;
    if (text.charCodeAt(k) === 40 /* ( */) return d;
  }
  return -1;
}

const isBlank = (c: number): boolean => c === 32 || c === 9;

export class RenderCheckError extends SwitchboardError {
  constructor(readonly problems: string[]) {
    super('RENDER_CHECK_FAILED', `rendered config failed the safety check (nothing was written):\n  - ${problems.slice(0, 20).join('\n  - ')}\nIf you use --templates, check the named template; otherwise report this as a bug`, { problems });
  }
}
