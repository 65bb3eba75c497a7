import { SwitchboardError } from '../errors.js';
import type { ApplyReport, RefusedOption } from './types.js';

export function describeRefused(r: RefusedOption): string {
  if (r.option === '(object)') return `agent "${r.agent}": ${r.object} is ${r.actual}, expected ${r.expected}`;
  return `agent "${r.agent}": ${r.object} ${r.option} is ${JSON.stringify(r.actual)}, expected ${JSON.stringify(r.expected)}`;
}

/** Asterisk did not take the change: the previous files were restored and the modules reloaded again. */
export class ApplyRolledBackError extends SwitchboardError {
  constructor(
    readonly report: ApplyReport,
    rollbackReloaded = true,
  ) {
    const lines = report.refused.slice(0, 20).map((r) => `  - ${describeRefused(r)}`);
    if (report.refused.length > 20) lines.push(`  - … and ${report.refused.length - 20} more`);
    const again = rollbackReloaded
      ? `reloaded ${report.modules.join(', ')} again`
      : `but reloading ${report.modules.join(', ')} again failed: the next apply reloads and verifies them (or reload them by hand)`;
    super(
      'APPLY_ROLLED_BACK',
      `Asterisk did not take the change (it logs the reason; the AMI Reload still answered Success). ` +
        `The previous files were restored and ${again}:\n${lines.join('\n')}\n` +
        'Fix the named agents in the store (or the templates) and apply again.',
      { report },
    );
  }
}

/** Who holds the apply lock, as its lock file says. */
export interface LockHolder {
  pid: number;
  /** '' when the lock file does not say (written by an older switchboard). */
  host: string;
  acquiredAt: string;
}

/** Another apply (this process or another one, on this host or another sharing the directory) holds the lock. */
export class ApplyLockedError extends SwitchboardError {
  /**
   * `takeoverInMs`: how long until the holder's lease runs out, unless it refreshes the lock
   * meanwhile (a live holder does), after which the lock is taken over (see FileLock).
   */
  constructor(lockFile: string, holder: LockHolder | undefined, takeoverInMs?: number) {
    const who = holder
      ? ` held by pid ${holder.pid}${holder.host ? ` on host ${holder.host}` : ''}${holder.acquiredAt ? ` since ${holder.acquiredAt}` : ''}`
      : '';
    const when = takeoverInMs !== undefined ? ` in ${Math.max(0, Math.ceil(takeoverInMs / 1000))} s unless its holder refreshes it meanwhile, as a live one does` : '';
    super(
      'APPLY_LOCKED',
      `another apply is running (lock ${lockFile}${who}); wait for it to finish. ` +
        `A lock left by a crashed process is taken over automatically: at once when that process ran in this container (same host and pid namespace), ` +
        `within about 25 s when it ran in another container under this host name, otherwise once it has not been refreshed for its lease${when}. ` +
        `To recover sooner, make sure no switchboard runs as that pid${holder?.host ? ` on ${holder.host}` : ''}, then delete ${lockFile}.`,
      { lockFile, ...(holder ? { pid: holder.pid, host: holder.host, acquiredAt: holder.acquiredAt } : {}), ...(takeoverInMs !== undefined ? { takeoverInMs: Math.max(0, Math.round(takeoverInMs)) } : {}) },
    );
  }
}
