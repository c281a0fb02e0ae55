export { RollgateWebProvider } from './rollgate-web.provider';
export type { RollgateWebProviderOptions, EventSourceConstructor, EventSourceLike, FetchLike, HeaderEntries, TrackingSettings } from './options';
export { WebConfigError } from './errors';
