/** The validated, normalised model. Everything downstream (plan, render, apply, workflows) reads these. */
export const TYPOLOGIES = ['phonebar', 'external', 'webrtc', 'mobile'];
export const TRANSPORT_PROTOCOLS = ['udp', 'tcp', 'tls', 'ws', 'wss'];
export const CODECS = ['ulaw', 'alaw', 'gsm', 'g722', 'g729', 'opus'];
export const RECORDING_FORMATS = ['off', 'wav', 'wav49', 'gsm'];
export const SIP_TYPES = ['friend', 'user', 'peer'];
/** chan_sip NAT words; `nat` may combine several with commas, as chan_sip accepts. */
export const NAT_WORDS = ['yes', 'no', 'force_rport', 'comedia', 'never', 'route', 'auto_force_rport', 'auto_comedia'];
export const BACKENDS = ['pjsip', 'sip', 'both'];
//# sourceMappingURL=types.js.map