import { createHmac, randomBytes } from 'node:crypto';
/**
 * Unified diff of two texts (Myers' O(ND) algorithm on lines), with `context` lines around each
 * change, like `diff -u`. Returns '' when the texts are equal.
 */
export function unifiedDiff(oldText, newText, oldName, newName, context = 3) {
    if (oldText === newText)
        return '';
    const a = splitLines(oldText);
    const b = splitLines(newText);
    const ops = myers(a, b);
    const hunks = [];
    // Group ops into hunks.
    let i = 0;
    while (i < ops.length) {
        while (i < ops.length && ops[i].kind === ' ')
            i++;
        if (i >= ops.length)
            break;
        let start = Math.max(0, i - context);
        let end = i;
        // extend end while changes are within 2*context of each other
        for (;;) {
            while (end < ops.length && ops[end].kind !== ' ')
                end++;
            let next = end;
            while (next < ops.length && ops[next].kind === ' ')
                next++;
            if (next < ops.length && next - end <= 2 * context) {
                end = next;
                continue;
            }
            end = Math.min(ops.length, end + context);
            break;
        }
        const slice = ops.slice(start, end);
        const first = slice[0];
        const oldCount = slice.filter((o) => o.kind !== '+').length;
        const newCount = slice.filter((o) => o.kind !== '-').length;
        const oldStart = oldCount ? first.aIndex + 1 : first.aIndex;
        const newStart = newCount ? first.bIndex + 1 : first.bIndex;
        hunks.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
        for (const o of slice)
            hunks.push(o.kind + o.line);
        i = end;
        start = end;
    }
    return [`--- ${oldName}`, `+++ ${newName}`, ...hunks].join('\n') + '\n';
}
function splitLines(t) {
    if (t === '')
        return [];
    const lines = t.split('\n');
    if (lines[lines.length - 1] === '')
        lines.pop();
    return lines;
}
function myers(a, b) {
    const n = a.length;
    const m = b.length;
    const max = n + m;
    const v = new Int32Array(2 * max + 2);
    const trace = [];
    let found = false;
    for (let d = 0; d <= max && !found; d++) {
        trace.push(v.slice());
        for (let k = -d; k <= d; k += 2) {
            let x;
            if (k === -d || (k !== d && v[max + k - 1] < v[max + k + 1]))
                x = v[max + k + 1];
            else
                x = v[max + k - 1] + 1;
            let y = x - k;
            while (x < n && y < m && a[x] === b[y]) {
                x++;
                y++;
            }
            v[max + k] = x;
            if (x >= n && y >= m) {
                found = true;
                break;
            }
        }
    }
    // Backtrack.
    const ops = [];
    let x = n;
    let y = m;
    for (let d = trace.length - 1; d >= 0; d--) {
        const vv = trace[d];
        const k = x - y;
        let prevK;
        if (k === -d || (k !== d && vv[max + k - 1] < vv[max + k + 1]))
            prevK = k + 1;
        else
            prevK = k - 1;
        const prevX = vv[max + prevK];
        const prevY = prevX - prevK;
        while (x > prevX && y > prevY) {
            x--;
            y--;
            ops.push({ kind: ' ', line: a[x], aIndex: x, bIndex: y });
        }
        if (d > 0) {
            if (x === prevX) {
                y--;
                ops.push({ kind: '+', line: b[y], aIndex: x, bIndex: y });
            }
            else {
                x--;
                ops.push({ kind: '-', line: a[x], aIndex: x, bIndex: y });
            }
        }
    }
    return ops.reverse();
}
/**
 * Hides secrets in rendered config before it is shown (diff output can end up in CI logs):
 * SIP passwords, MD5 digests and voicemail PINs become `<secret:xxxxxx>`, an HMAC with a key made
 * fresh for each run, so a changed secret still shows as a changed line but cannot be guessed.
 */
export function makeSecretMasker() {
    const key = randomBytes(16);
    const tag = (s) => `<secret:${createHmac('sha256', key).update(s).digest('hex').slice(0, 6)}>`;
    return (text) => text
        .replace(/^(password|secret|md5_cred|md5secret) = (.*)$/gm, (_m, k, v) => `${k} = ${tag(v)}`)
        .replace(/^([0-9]+) => ([0-9]+),/gm, (_m, ext, pin) => `${ext} => ${tag(pin)},`);
}
//# sourceMappingURL=diff.js.map