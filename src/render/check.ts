import { SwitchboardError } from '../errors.js';

/**
 * Re-reads rendered config and proves its shape: every line is blank, a comment, a section
 * header, `key = value` or `key => value`; nothing starts with `#` (directive); no `;` hides inside
 * a value; and a chunk opens only the sections it is allowed to. A value that smuggled a newline,
 * `[section]` or `#include` past the model would fail here rather than reach Asterisk.
 */
export interface ChunkRules {
  /** Section names this chunk may open (exact). */
  sections: ReadonlySet<string>;
  /** When set, every `key => value` line's first field must be one of these (dialplan/voicemail). */
  arrowKeys?: ReadonlySet<string>;
}

const SECTION = /^\[([A-Za-z0-9_.+-]+)\](\((\+|!|[A-Za-z0-9_,!-]+)\))?$/;
const ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*) = (\S.*)$/;
const ARROW = /^ ?([A-Za-z0-9_+*#-]+) => (\S.*)$/;

export function checkChunk(text: string, rules: ChunkRules, where: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  // Runs on every rendered line (~400k for 10k agents): build the location text only for a problem.
  const at = (i: number) => `${where}, line ${i + 1}`;
  lines.forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith(';')) {
      if (line.startsWith(';--')) problems.push(`${at(i)}: block comment opener ";--"`);
      return;
    }
    if (line.startsWith('[')) {
      const m = SECTION.exec(line);
      if (!m) problems.push(`${at(i)}: malformed section header ${JSON.stringify(line)}`);
      else if (!rules.sections.has(m[1]!)) problems.push(`${at(i)}: section [${m[1]}] does not belong here`);
      return;
    }
    if (line.trimStart().startsWith('#')) {
      problems.push(`${at(i)}: directive line ${JSON.stringify(line.slice(0, 80))} (#include, #exec, ...)`);
      return;
    }
    if (/\r/.test(line)) problems.push(`${at(i)}: carriage return in line`);
    // Any ";" not written as "\;" starts a comment that would silently cut the value.
    if (line.includes(';') && /(^|[^\\]);/.test(line)) problems.push(`${at(i)}: ";" inside a value ${JSON.stringify(line)}`);
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
    problems.push(`${at(i)}: not a config line ${JSON.stringify(line.slice(0, 80))}`);
  });
  return problems;
}

export class RenderCheckError extends SwitchboardError {
  constructor(readonly problems: string[]) {
    super('RENDER_CHECK_FAILED', `rendered config failed the safety check (nothing was written):\n  - ${problems.slice(0, 20).join('\n  - ')}\nIf you use --templates, check the named template; otherwise report this as a bug`, { problems });
  }
}
