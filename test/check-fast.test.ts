/** chunkIsClean (the checker's one-pass proof) against the line rules it stands in for. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLines, chunkIsClean, type ChunkRules } from '../src/render/check.js';

describe('chunkIsClean', () => {
  const PIECES = ['', ';', ';--', '; c', '[', ']', '[a]', '[b]', '[a](+)', '[a](x', '(', ')', 'a', 'exten', 'same', 'include', ' ', '  ', '=', ' = ', ' => ', '=>',
    '\\', '\\;', '#', '1001', '1002', ',', 'n', '\t', '\r', '\u2028', '\u00a0', 'é', '*', '+', '-', '_', 'x y', '\n', '\n', 'key = v', 'exten => 1001,1,x', ' same => n'];
  const RULES: ChunkRules[] = [
    { sections: new Set(['a']), arrowKeys: new Set(['1001', 'a', 'n', 'exten']) }, { sections: new Set(['a', 'b']) }, { sections: new Set(), arrowKeys: new Set() },
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
    const ok = ['', '; a comment; even with ;-- inside', '[a]', '[a](+)', '[a](!)', 'key = value', 'key_2 = a=b <c> "d" $5 [x]', 'escaped = a\\;b',
      'exten => 1001,1,NoOp()', ' same => n,Hangup()', 'include => other', '1001 => 1234,Name,a@b.c,,attach=yes', 'name = Zoë'].join('\n');
    expect(chunkIsClean(ok, RULES[0]!)).toBe(true);
  });
});
