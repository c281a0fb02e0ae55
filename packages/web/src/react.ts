// @rollgate/web/react: React components over the Rollgate provider's signals. A separate entry
// point so that apps without React never load it (and never need the `react` peer dependency);
// it does not import the provider class, only the small helpers that find it through OpenFeature.
export { RollgateErrorBoundary } from './error-boundary';
export type { RollgateErrorBoundaryProps, FallbackProps } from './error-boundary';
export { FeedbackPrompt } from './feedback-prompt';
export type { FeedbackPromptProps } from './feedback-prompt';
