import { SwitchboardError } from '../errors.js';
export function describeRefused(r) {
    if (r.option === '(object)')
        return `agent "${r.agent}": ${r.object} is ${r.actual}, expected ${r.expected}`;
    return `agent "${r.agent}": ${r.object} ${r.option} is ${JSON.stringify(r.actual)}, expected ${JSON.stringify(r.expected)}`;
}
/** Asterisk did not take the change: the previous files were restored and the modules reloaded again. */
export class ApplyRolledBackError extends SwitchboardError {
    report;
    constructor(report, rollbackReloaded = true) {
        const lines = report.refused.slice(0, 20).map((r) => `  - ${describeRefused(r)}`);
        if (report.refused.length > 20)
            lines.push(`  - … and ${report.refused.length - 20} more`);
        const again = rollbackReloaded
            ? `reloaded ${report.modules.join(', ')} again`
            : `but reloading ${report.modules.join(', ')} again failed: reload them by hand`;
        super('APPLY_ROLLED_BACK', `Asterisk did not take the change (it logs the reason; the AMI Reload still answered Success). ` +
            `The previous files were restored and ${again}:\n${lines.join('\n')}\n` +
            'Fix the named agents in the store (or the templates) and apply again.', { report });
        this.report = report;
    }
}
/** Another apply (this process or another one) holds the lock. */
export class ApplyLockedError extends SwitchboardError {
    constructor(lockFile, pid) {
        super('APPLY_LOCKED', `another apply is running (lock ${lockFile}${pid ? ` held by pid ${pid}` : ''}); wait for it to finish. ` +
            'A lock left by a crashed process is taken over automatically.', { lockFile, ...(pid ? { pid } : {}) });
    }
}
//# sourceMappingURL=errors.js.map