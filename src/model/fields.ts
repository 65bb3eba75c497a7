/**
 * Field rules shared by settings and agent validation. Every value that can reach a generated
 * Asterisk file passes one of these, so rendering can never be steered by input: identifiers are
 * `[A-Za-z0-9_.-]`, numbers-as-text are digits, and free text can hold no line break, comment,
 * section bracket, directive, dialplan expression or control character.
 */

export const RE = {
  agentId: /^[0-9]{1,12}$/,
  username: /^[A-Za-z0-9._]{1,64}$/,
  personName: /^[\p{L}\p{M}0-9' -]{1,64}$/u,
  identifier: /^[A-Za-z0-9_.-]{1,80}$/,
  context: /^[A-Za-z0-9_-]{1,79}$/,
  extension: /^[0-9]{2,15}$/,
  did: /^\+[1-9][0-9]{6,14}$/,
  cliNumber: /^\+?[0-9]{3,20}$/,
  pin: /^[0-9]{4,12}$/,
  email: /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$/,
  language: /^[a-z]{2,3}(_[A-Z]{2})?$/,
  md5: /^[0-9a-f]{32}$/,
  ipv4: /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/,
  hostname: /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
  ipv6: /^[0-9A-Fa-f:.]{2,45}$/,
  path: /^\/[A-Za-z0-9_./-]{1,255}$/,
  pushGateway: /^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$/,
};

/** Line breaks and control characters: C0, DEL, C1 (U+0080-U+009F, NEL among them), U+2028, U+2029. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Why a piece of free text is refused, or undefined when it is safe to render. */
export function freeTextProblem(s: string): string | undefined {
  // C0 and C1 controls (U+0085 is NEL, a line break to Unicode) and the Unicode line and paragraph
  // separators, which end a line for JavaScript (and so for the rendered-file checker).
  if (CONTROL.test(s)) return 'holds a line break or control character';
  if (s.includes(';')) return 'holds ";" (starts a comment in Asterisk config)';
  if (s.includes('[') || s.includes(']')) return 'holds "[" or "]" (section brackets)';
  if (s.includes('${') || s.includes('$[')) return 'holds "${" or "$[" (a dialplan expression)';
  if (s.includes('"') || s.includes('<') || s.includes('>')) return 'holds a quote or angle bracket (caller id syntax)';
  if (s.includes('\\')) return 'holds a backslash';
  if (s.trimStart().startsWith('#')) return 'starts with "#" (an Asterisk directive such as #include)';
  if (s !== s.trim()) return 'has leading or trailing spaces';
  if (s.length === 0) return 'is empty';
  if (s.length > 80) return 'is longer than 80 characters';
  return undefined;
}

/** Special characters of the password policy (the XCALLY Security Suite list, plus `-_=+[{]}`). */
export const PASSWORD_SPECIALS = '~!@#$%^&-_=+[{]}';

export function passwordPolicyProblem(p: string): string | undefined {
  const missing: string[] = [];
  if (p.length < 8) missing.push('at least 8 characters');
  if (!/[a-z]/.test(p)) missing.push('a lowercase letter');
  if (!/[A-Z]/.test(p)) missing.push('an uppercase letter');
  if (!/[0-9]/.test(p)) missing.push('a digit');
  if (![...p].some((c) => PASSWORD_SPECIALS.includes(c))) missing.push(`one of ${PASSWORD_SPECIALS}`);
  return missing.length ? `the password policy needs ${missing.join(', ')}` : undefined;
}

/** Characters a SIP secret can never hold, policy or not: they would break the config line. */
export function secretSyntaxProblem(p: string): string | undefined {
  if (CONTROL.test(p)) return 'holds a line break or control character';
  if (/\s/.test(p)) return 'holds a space';
  if (p.includes(';')) return 'holds ";" (Asterisk would cut the secret there)';
  if (p.includes('"') || p.includes('\\')) return 'holds a quote or backslash';
  if (p.length > 128) return 'is longer than 128 characters';
  return undefined;
}

const tzCache = new Map<string, boolean>();
export function isIanaTimezone(tz: string): boolean {
  let ok = tzCache.get(tz);
  if (ok === undefined) {
    ok = /^[A-Za-z_]+(\/[A-Za-z0-9_+-]+){0,2}$/.test(tz) || tz === 'UTC';
    if (ok) {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
      } catch {
        ok = false;
      }
    }
    tzCache.set(tz, ok);
  }
  return ok;
}

export type GroupResult = { value: string } | { problem: string };

/**
 * Parses a call/pickup group list (`1,3-5`, `[1, "3-5"]`, `7`) into Asterisk's canonical form:
 * sorted, merged ranges with no spaces. Asterisk itself silently drops `3 - 5` and `5-3`, so we
 * normalise or refuse here instead.
 */
export function normaliseGroups(input: unknown): GroupResult {
  if (input === undefined || input === null || input === '') return { value: '' };
  const parts: string[] = [];
  if (Array.isArray(input)) {
    for (const p of input) {
      if (typeof p !== 'number' && typeof p !== 'string') return { problem: 'list items must be numbers or ranges like "3-5"' };
      parts.push(String(p));
    }
  } else if (typeof input === 'number' || typeof input === 'string') {
    parts.push(...String(input).split(','));
  } else {
    return { problem: 'must be a number, a list, or text like "1,3-5"' };
  }
  const members = new Set<number>();
  for (const raw of parts) {
    const p = raw.trim();
    if (p === '') return { problem: 'has an empty item' };
    const m = /^(\d{1,2})(?:\s*-\s*(\d{1,2}))?$/.exec(p);
    if (!m) return { problem: `"${p}" is not a group number (0-63) or a range like 3-5` };
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a > 63 || b > 63) return { problem: `group ${Math.max(a, b)} is out of range: groups are 0-63` };
    if (b < a) return { problem: `range "${p}" runs backwards: write ${b}-${a}` };
    for (let g = a; g <= b; g++) members.add(g);
  }
  const sorted = [...members].sort((x, y) => x - y);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return { value: out.join(',') };
}

export function isHostAddress(host: string): boolean {
  let h = host;
  let port: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(h);
  if (v6) {
    port = v6[2];
    if (!RE.ipv6.test(v6[1]!) || !v6[1]!.includes(':')) return false;
  } else {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(h);
    if (!m) return false;
    h = m[1]!;
    port = m[2];
    if (!RE.ipv4.test(h) && !RE.hostname.test(h)) return false;
    if (/^[0-9.]+$/.test(h) && !RE.ipv4.test(h)) return false;
  }
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  return true;
}

export function isCidr(net: string): boolean {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(net);
  if (m) return RE.ipv4.test(m[1]!) && Number(m[2]) <= 32;
  const m6 = /^([0-9A-Fa-f:]+)\/(\d{1,3})$/.exec(net);
  return Boolean(m6 && m6[1]!.includes(':') && Number(m6[2]) <= 128);
}

export function isBindAddress(bind: string): boolean {
  const m = /^(.+):(\d{1,5})$/.exec(bind);
  if (!m) return false;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return false;
  const h = m[1]!;
  if (/^\[[0-9A-Fa-f:]+\]$/.test(h)) return true;
  return RE.ipv4.test(h);
}
