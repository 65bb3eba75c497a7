/** chunkIsClean (the checker's one-pass proof) against the line rules it stands in for. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLines, chunkIsClean, linesAreClean, type ChunkRules } from '../src/render/check.js';

describe('chunkIsClean', () => {
  const PIECES = ['', ';', ';--', '; c', '[', ']', '[a]', '[b]', '[a](+)', '[a](x', '(', ')', 'a', 'exten', 'same', 'include', ' ', '  ', '=', ' = ', ' => ', '=>',
    '\\', '\\;', '#', '1001', '1002', ',', 'n', '\t', '\r', '\u2028', '\u00a0', 'é', '*', '+', '-', '_', 'x y', '\n', '\n', 'key = v', 'exten => 1001,1,x', ' same => n',
    // What an agent's text may not hold, and near misses.
    '${', '$', '{', 'SHELL', 'shell', 'ShElL', 'System', 'system', 'TrySystem', 'systems', 'include => x', 'Include', 'password = ', 'secret', 'x${SHELL(id)}', ',System(id)'];
  const RULES: ChunkRules[] = [
    { sections: new Set(['a']), arrowKeys: new Set(['1001', 'a', 'n', 'exten']) }, { sections: new Set(['a', 'b']) }, { sections: new Set(), arrowKeys: new Set() },
    { sections: new Set(['a']), arrowKeys: new Set(['1001', 'a', 'n', 'exten']), agent: 'dialplan' }, { sections: new Set(['a']), agent: 'config' },
    { sections: new Set(), arrowKeys: new Set(['1001', 'include']), agent: 'config' },
  ];
  it('never passes text the line rules refuse, and passes what the templates produce', () => {
    const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 14 }).map((p) => p.join(''));
    let passed = 0;
    fc.assert(fc.property(text, fc.constantFrom(...RULES), (t, rules) => {
      if (!chunkIsClean(t, rules)) return;
      passed++;
      expect(checkLines(t, rules, 'x'), JSON.stringify(t)).toEqual([]);
    }), { numRuns: 20000 });
    expect(passed, 'enough texts pass for the comparison to mean something').toBeGreaterThan(1000);
    // The stock dialplan expressions pass in an agent's dialplan; what would run a command does not.
    const dialplan = RULES[3]!;
    const stock = ['exten => 1001,1,NoOp(switchboard agent extension)', ' same => n,MixMonitor(switchboard/${EXTEN}-${STRFTIME(${EPOCH},,%Y%m%d-%H%M%S)}-${UNIQUEID}.wav,b)',
      ' same => n,GotoIf($["${DIALSTATUS}" = "BUSY"]?busy)', ' same => n,GotoIf($["${STASISSTATUS}" != "SUCCESS"]?vm)', '; System(x) in a comment is no line'].join('\n');
    expect(chunkIsClean(stock, dialplan) || checkLines(stock, dialplan, 'x').length === 0).toBe(true);
    for (const bad of [' same => n,System(id)', ' same => n,TrySystem (id)', 'exten => 1001,1,Set(x=${ shell (id)})', 'include => other', 'Include => other']) {
      expect(chunkIsClean(bad, dialplan), bad).toBe(false);
      expect(checkLines(bad, dialplan, 'x'), bad).toHaveLength(1);
    }
    const ok = ['', '; a comment; even with ;-- inside', '[a]', '[a](+)', '[a](!)', 'key = value', 'key_2 = a=b <c> "d" $5 [x]', 'escaped = a\\;b',
      'exten => 1001,1,NoOp()', ' same => n,Hangup()', 'include => other', '1001 => 1234,Name,a@b.c,,attach=yes', 'name = Zoë'].join('\n');
    expect(chunkIsClean(ok, RULES[0]!)).toBe(true);
  });

  it('accepts exactly the lines of the per-character value pattern it was rewritten from', () => {
    // The checker's pattern as first written: a value is one character class or an escaped ";"
    // per character. The checker now spells the value as runs (fast in V8); same language.
    const VALUE = String.raw`[^\s;](?:[^;\n\r\u2028\u2029]|(?<=\\);)*`;
    const REFERENCE = new RegExp(
      String.raw`^(?:(?:;(?!--)[^\n]*|\[[A-Za-z0-9_.+-]+\](?:\((?:\+|!|[A-Za-z0-9_,!-]+)\))?|[A-Za-z_][A-Za-z0-9_]* = ${VALUE}| ?[A-Za-z0-9_+*-][A-Za-z0-9_+*#-]* => ${VALUE}|)(?:\n|$))*$`,
    );
    const VALUE_PIECES = ['\\', ';', '\\;', '\\\\;', ';;', 'a', ' ', '\t', '\r', '\n', '\u2028', '\u2029', 'é', '=', ' => ', ',', '#', '[x]'];
    const line = fc.tuple(fc.constantFrom('k = ', 'exten => ', ' same => ', '; ', '[a]', '', 'k =', 'k  = '), fc.array(fc.constantFrom(...VALUE_PIECES), { maxLength: 8 }))
      .map(([head, value]) => head + value.join(''));
    const text = fc.array(line, { maxLength: 5 }).map((lines) => lines.join('\n'));
    let clean = 0;
    fc.assert(fc.property(text, (t) => {
      const want = REFERENCE.test(t);
      if (want) clean++;
      expect(linesAreClean(t), JSON.stringify(t)).toBe(want);
    }), { numRuns: 20000 });
    expect(clean, 'enough clean texts for the comparison to mean something').toBeGreaterThan(1000);
  });
});
