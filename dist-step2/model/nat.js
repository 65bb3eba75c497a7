import { NAT_WORDS } from './types.js';
/**
 * Parses chan_sip's `nat` (one word or a comma combination, as chan_sip accepts) into normalised
 * words: `no` wins over everything (chan_sip ignores the rest), `never`/`route` mean `no`, and a
 * non-auto word beats its `auto_` counterpart, as chan_sip does.
 */
export function parseNat(text) {
    const words = text.split(',').map((w) => w.trim());
    for (const w of words) {
        if (!NAT_WORDS.includes(w))
            return { problem: `"${w}" is not a NAT setting` };
    }
    const set = new Set(words);
    if (set.has('no') || set.has('never') || set.has('route')) {
        if (set.size > 1)
            return { problem: '"no"/"never"/"route" cannot be combined with other NAT settings (chan_sip would ignore the others)' };
        return { value: ['no'] };
    }
    if (set.has('yes')) {
        if (set.size > 1)
            return { problem: '"yes" already means force_rport,comedia: do not combine it' };
        return { value: ['force_rport', 'comedia'] };
    }
    if (set.has('force_rport'))
        set.delete('auto_force_rport');
    if (set.has('comedia'))
        set.delete('auto_comedia');
    const order = ['force_rport', 'comedia', 'auto_force_rport', 'auto_comedia'];
    return { value: order.filter((w) => set.has(w)).slice() };
}
export function natText(nat) {
    return nat.join(',');
}
/** pjsip endpoint NAT options, as Asterisk's own sip_to_pjsip converter maps chan_sip's `nat`. */
export function pjsipNat(nat) {
    const has = (w) => nat.includes(w);
    const rport = has('force_rport') || has('auto_force_rport');
    const comedia = has('comedia') || has('auto_comedia');
    return { forceRport: rport, rtpSymmetric: comedia, rewriteContact: rport };
}
//# sourceMappingURL=nat.js.map