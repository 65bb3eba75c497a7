import { PeerRequestError } from '../errors.js';
/** The order apply reloads modules in: endpoints before the dialplan that dials them. */
export const MODULE_ORDER = ['res_pjsip.so', 'chan_sip.so', 'app_voicemail.so', 'pbx_config.so'];
/** Asterisk's answer to a `Reload` of a module that is not loaded (e.g. chan_sip on Asterisk 22). */
export function isNoSuchModule(err) {
    return err instanceof PeerRequestError && /no such module/i.test(err.message);
}
export function isReloadInProgress(err) {
    return err instanceof PeerRequestError && /reload is in progress/i.test(err.message);
}
/**
 * Reloads one module with AMI `Reload` + `Module:` (never a bare Reload: reloading everything has
 * deadlocked Asterisk 20). "A reload is in progress" is retried with doubling delays; "No such
 * module" resolves `false` (the caller decides whether a module that is not loaded matters);
 * anything else is thrown.
 */
export async function reloadModule(ami, module, opts, log) {
    const attempts = Math.max(1, opts.attempts);
    for (let attempt = 1;; attempt++) {
        try {
            await ami.action('Reload', { Module: module }, { timeoutMs: opts.timeoutMs });
            log.debug({ module, attempt }, 'module reloaded');
            return true;
        }
        catch (err) {
            if (isNoSuchModule(err))
                return false;
            if (!isReloadInProgress(err) || attempt >= attempts)
                throw err;
            const delayMs = Math.min(30_000, opts.delayMs * 2 ** (attempt - 1));
            log.warn({ module, attempt, delayMs }, 'Asterisk answered "A reload is in progress"; retrying');
            await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
    }
}
//# sourceMappingURL=reload.js.map