import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { errorMessage } from '../errors.js';
import { EmailTemplateError, VoicemailEmailError } from './errors.js';
/** The template files; an operator's directory may hold either or both. */
export const EMAIL_TEMPLATE_FILES = {
    subject: 'voicemail-subject.hbs',
    body: 'voicemail-body.txt.hbs',
};
/** templates/email/ of this package (works from src/ under vitest and from dist/). */
export function defaultEmailTemplatesDir() {
    return fileURLToPath(new URL('../../templates/email/', import.meta.url));
}
/**
 * Loads the voicemail templates. A file in `dir` (the operator's directory) wins over the default
 * of the same name in `defaultsDir`. Templates are compiled with a private Handlebars instance,
 * logic-free (`knownHelpersOnly`), without HTML escaping (plain text), and `strict`: a name the
 * context lacks is an error, found here by a trial render rather than on the first voicemail.
 */
export async function loadEmailTemplates(dir, options = {}) {
    const defaultsDir = options.defaultsDir ?? defaultEmailTemplatesDir();
    if (dir !== undefined) {
        const info = await stat(dir).catch(() => undefined);
        if (!info?.isDirectory())
            throw new EmailTemplateError(dir, 'the templates directory does not exist');
    }
    const handlebars = Handlebars.create();
    const load = async (name) => {
        let file = join(defaultsDir, name);
        if (dir !== undefined) {
            const candidate = join(dir, name);
            if (await stat(candidate).then((s) => s.isFile(), () => false))
                file = candidate;
        }
        let source;
        try {
            source = await readFile(file, 'utf8');
        }
        catch (err) {
            throw new EmailTemplateError(file, `cannot read: ${errorMessage(err)}`, { cause: err });
        }
        let template;
        try {
            template = handlebars.compile(source, { noEscape: true, strict: true, knownHelpersOnly: true });
            template(SAMPLE_CONTEXT);
        }
        catch (err) {
            throw new EmailTemplateError(file, `${errorMessage(err)} (names available: ${CONTEXT_NAMES})`, { cause: err });
        }
        return { file, render: (context) => template(context) };
    };
    const [subject, body] = await Promise.all([load(EMAIL_TEMPLATE_FILES.subject), load(EMAIL_TEMPLATE_FILES.body)]);
    return { subject: subject.render, body: body.render, files: { subject: subject.file, body: body.file } };
}
/** Builds the email that carries one voicemail to the agent it was left for. */
export function buildVoicemailEmail(input, templates) {
    const { agent } = input;
    const to = (agent.email ?? '').trim();
    if (to === '')
        throw new VoicemailEmailError('AGENT_EMAIL_MISSING', agent.id, 'has no email address, so a voicemail cannot be emailed');
    if (!EMAIL_RE.test(to))
        throw new VoicemailEmailError('AGENT_EMAIL_INVALID', agent.id, `email address "${oneLine(to)}" is invalid, e.g. "alice@example.com"`);
    const local = localDateTime(input.startedAt, agent.timezone, agent.id);
    const attachmentName = recordingFileName(local, input.interactionId, 'wav');
    const context = {
        agent: {
            id: oneLine(agent.id),
            username: oneLine(agent.username),
            displayName: oneLine(agent.displayName || agent.username),
            email: to,
        },
        callerNumber: oneLine(input.callerNumber) || 'unknown',
        did: oneLine(input.did),
        interactionId: oneLine(input.interactionId),
        date: `${local.year}-${local.month}-${local.day}`,
        time: `${local.hour}:${local.minute}`,
        timezone: agent.timezone,
        duration: formatDuration(input.durationSeconds),
        durationSeconds: Math.max(0, Math.round(input.durationSeconds)),
        attachmentName,
    };
    return {
        to,
        subject: oneLine(templates.subject(context)),
        text: templates.body(context),
        attachmentName,
    };
}
/** `date` on the wall clock of the IANA `timeZone`. Throws AGENT_TIMEZONE_INVALID for an unknown zone. */
export function localDateTime(date, timeZone, agentId = '?') {
    let format;
    try {
        if (!timeZone)
            throw new RangeError('empty');
        format = new Intl.DateTimeFormat('en-US', {
            timeZone,
            year: 'numeric',
            month: '2-digit',
            day: '2-digit',
            hour: '2-digit',
            minute: '2-digit',
            hourCycle: 'h23',
        });
    }
    catch {
        throw new VoicemailEmailError('AGENT_TIMEZONE_INVALID', agentId, `time zone "${oneLine(timeZone ?? '')}" is not an IANA time zone, e.g. "Australia/Sydney" or "UTC"`);
    }
    const parts = {};
    for (const part of format.formatToParts(date))
        parts[part.type] = part.value;
    return {
        year: (parts.year ?? '').padStart(4, '0'),
        month: parts.month ?? '',
        day: parts.day ?? '',
        hour: parts.hour === '24' ? '00' : (parts.hour ?? ''),
        minute: parts.minute ?? '',
    };
}
/**
 * The Calls module's recording name: `yyyymmdd_hhmm_<interaction id>.<ext>`, from a wall-clock time
 * (see `localDateTime`). Characters other than letters, digits, `_` and `-` in the id become `_`.
 */
export function recordingFileName(local, interactionId, ext) {
    const id = interactionId.replace(/[^A-Za-z0-9_-]/g, '_');
    return `${local.year}${local.month}${local.day}_${local.hour}${local.minute}_${id}.${ext}`;
}
/** 65 → "1:05", 3725 → "1:02:05". */
export function formatDuration(seconds) {
    const total = Number.isFinite(seconds) ? Math.max(0, Math.round(seconds)) : 0;
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
/** Control characters (CR, LF, TAB, ...) become spaces, runs of spaces one space, ends trimmed. */
function oneLine(value) {
    // eslint-disable-next-line no-control-regex
    return String(value ?? '').replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}
const EMAIL_RE = /^[^\s@,;:<>()[\]"\\]+@[^\s@,;:<>()[\]"\\]+\.[^\s@,;:<>()[\]"\\]+$/;
const SAMPLE_CONTEXT = {
    agent: { id: '1001', username: 'alice', displayName: 'Alice Example', email: 'alice@example.com' },
    callerNumber: '+61299998888',
    did: '+61255550100',
    interactionId: '1700000000000000123',
    date: '2024-05-01',
    time: '09:30',
    timezone: 'Australia/Sydney',
    duration: '0:42',
    durationSeconds: 42,
    attachmentName: '20240501_0930_1700000000000000123.wav',
};
const CONTEXT_NAMES = 'agent.id, agent.username, agent.displayName, agent.email, callerNumber, did, interactionId, date, time, timezone, duration, durationSeconds, attachmentName';
//# sourceMappingURL=voicemail-email.js.map