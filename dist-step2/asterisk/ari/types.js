export const ARI_EVENT_TYPES = [
    'StasisStart', 'StasisEnd', 'ChannelStateChange', 'ChannelDestroyed', 'ChannelHangupRequest', 'ChannelDtmfReceived',
    'PlaybackStarted', 'PlaybackFinished', 'RecordingStarted', 'RecordingFinished', 'RecordingFailed',
    'EndpointStateChange', 'DeviceStateChanged', 'Dial',
];
//# sourceMappingURL=types.js.map