/**
 * AMI wire format: `Key: Value\r\n` lines, an empty line ends a message. The first line a server
 * sends is the `Asterisk Call Manager/x.y.z` banner (no empty line after it).
 *
 * Parsing is tolerant: bare LF line ends are accepted, repeated headers are kept (joined with
 * `\n`, e.g. the `Output:` lines of a modern `Command` response), and the pre-14 `Response: Follows`
 * form of `Command` (raw output lines up to `--END COMMAND--`) is folded into an `Output` header.
 */
import { SwitchboardError } from '../../errors.js';
export const BANNER_PREFIX = 'Asterisk Call Manager/';
const END_COMMAND = '--END COMMAND--';
/** Case-insensitive header lookup. */
export function get(msg, key) {
    if (Object.prototype.hasOwnProperty.call(msg, key))
        return msg[key];
    const lower = key.toLowerCase();
    for (const k of Object.keys(msg)) {
        if (k.toLowerCase() === lower)
            return msg[k];
    }
    return undefined;
}
/** Case-insensitive equality of a header's value with `expected`. */
export function headerIs(msg, key, expected) {
    return get(msg, key)?.toLowerCase() === expected.toLowerCase();
}
function addHeader(msg, key, value) {
    msg[key] = Object.prototype.hasOwnProperty.call(msg, key) ? `${msg[key]}\n${value}` : value;
}
/** Incremental parser: feed it decoded text as it arrives, it calls `onFrame` per banner/message. */
export class AmiParser {
    onFrame;
    buffer = '';
    expectBanner;
    current;
    /** Inside a `Response: Follows` body (raw output until `--END COMMAND--`). */
    follows = false;
    followsOutput = [];
    constructor(onFrame, opts = {}) {
        this.onFrame = onFrame;
        this.expectBanner = opts.expectBanner ?? true;
    }
    push(text) {
        this.buffer += text;
        let nl;
        while ((nl = this.buffer.indexOf('\n')) !== -1) {
            let line = this.buffer.slice(0, nl);
            this.buffer = this.buffer.slice(nl + 1);
            if (line.endsWith('\r'))
                line = line.slice(0, -1);
            this.line(line);
        }
    }
    line(line) {
        if (this.expectBanner) {
            if (line === '')
                return;
            this.expectBanner = false;
            this.onFrame({ kind: 'banner', text: line });
            return;
        }
        if (this.follows) {
            this.followsLine(line);
            return;
        }
        if (line === '') {
            const msg = this.current;
            this.current = undefined;
            if (msg)
                this.onFrame({ kind: 'message', message: msg });
            return;
        }
        const msg = (this.current ??= {});
        const colon = line.indexOf(':');
        if (colon <= 0) {
            // Not a header; keep it rather than lose it (Asterisk never sends this outside Follows).
            addHeader(msg, 'Output', line);
            return;
        }
        const key = line.slice(0, colon);
        const value = line[colon + 1] === ' ' ? line.slice(colon + 2) : line.slice(colon + 1);
        addHeader(msg, key, value);
        if (key.toLowerCase() === 'response' && value.toLowerCase() === 'follows') {
            this.follows = true;
            this.followsOutput = [];
        }
    }
    followsLine(line) {
        const msg = this.current;
        const end = line.indexOf(END_COMMAND);
        if (end !== -1) {
            const before = line.slice(0, end);
            if (before !== '')
                this.followsOutput.push(before);
            // Trailing empty lines of the CLI output carry nothing.
            while (this.followsOutput.length > 0 && this.followsOutput[this.followsOutput.length - 1] === '')
                this.followsOutput.pop();
            addHeader(msg, 'Output', this.followsOutput.join('\n'));
            this.follows = false;
            this.followsOutput = [];
            return;
        }
        // Headers Asterisk writes between `Response: Follows` and the raw output.
        const header = /^(ActionID|Privilege):\s?(.*)$/i.exec(line);
        if (header && this.followsOutput.length === 0) {
            addHeader(msg, header[1], header[2]);
            return;
        }
        this.followsOutput.push(line);
    }
}
/** Throws SwitchboardError('AMI_BAD_VALUE') if `text` could break the framing. */
export function assertSafe(what, text, opts = {}) {
    if (/[\r\n]/.test(text)) {
        // Values are not quoted: they may be secrets and error messages get logged.
        const shown = opts.quote ? ` ${JSON.stringify(text)}` : '';
        throw new SwitchboardError('AMI_BAD_VALUE', `AMI ${what}${shown} contains a CR or LF, which would inject AMI headers; refusing to send it`, { what });
    }
}
/**
 * Serialises an action. `Action` first, then `ActionID`, then the fields in order; an array value
 * becomes a repeated header (e.g. `Variable`). Validates everything before building anything.
 */
export function encodeAction(name, actionId, fields = {}) {
    assertSafe('action name', name, { quote: true });
    if (name.trim() === '')
        throw new SwitchboardError('AMI_BAD_VALUE', 'AMI action name is empty');
    assertSafe('action id', actionId, { quote: true });
    const lines = [`Action: ${name}`, `ActionID: ${actionId}`];
    for (const [key, value] of Object.entries(fields)) {
        assertSafe('header name', key, { quote: true });
        if (key === '' || key.includes(':') || key.trim() !== key) {
            throw new SwitchboardError('AMI_BAD_VALUE', `AMI header name ${JSON.stringify(key)} is invalid: it must be non-empty, without ':' or surrounding spaces`, { key });
        }
        const lower = key.toLowerCase();
        if (lower === 'action' || lower === 'actionid') {
            throw new SwitchboardError('AMI_BAD_VALUE', `AMI header ${key} is set by the client; do not pass it in fields`, { key });
        }
        const values = Array.isArray(value) ? value : [value];
        for (const v of values) {
            if (typeof v !== 'string') {
                throw new SwitchboardError('AMI_BAD_VALUE', `AMI header ${key} must be a string, got ${typeof v}`, { key });
            }
            assertSafe(`value of ${key}`, v);
            lines.push(`${key}: ${v}`);
        }
    }
    return lines.join('\r\n') + '\r\n\r\n';
}
//# sourceMappingURL=protocol.js.map