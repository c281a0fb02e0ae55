export { RollgateWebProvider } from './rollgate-web.provider';
export type { RollgateWebProviderOptions, CaptureErrorsSettings, EventSourceConstructor, EventSourceLike, FetchLike, HeaderEntries, TrackingSettings } from './options';
export { WebConfigError } from './errors';
export { sendFeedback, reportCaughtError, startTask } from './signals';
export type { FeedbackInput, Sentiment, SignalOptions, Task, TaskOptions } from './signals';
export type { ErrorSource } from './error-capture';
