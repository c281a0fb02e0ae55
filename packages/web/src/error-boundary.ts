import { Component, type ErrorInfo, type ReactNode } from 'react';
import { reportCaughtError } from './signals';

// A React error boundary that reports what it catches to the Rollgate provider (source
// "boundary": fingerprint and scrubbed message, deduplicated and rate-limited with the uncaught
// errors) and renders a fallback instead of the broken subtree. Written without JSX so the
// package needs no JSX build setting and its CommonJS and ES builds stay plain tsc output.

export interface FallbackProps {
  /** What was thrown. */
  error: unknown;
  /** Renders the children again (after the user chose to retry). */
  reset: () => void;
}

export interface RollgateErrorBoundaryProps {
  children?: ReactNode;
  /** Shown instead of the children once one of them threw. @default nothing */
  fallback?: ReactNode | ((props: FallbackProps) => ReactNode);
  /** The OpenFeature domain the Rollgate provider is registered under. @default the default provider */
  domain?: string;
  /** Send a report to the provider. @default true */
  report?: boolean;
  /** Called with what was caught (your own logging); an exception in it is ignored. */
  onError?: (error: unknown, info: ErrorInfo) => void;
}

interface State {
  failed: boolean;
  error: unknown;
}

export class RollgateErrorBoundary extends Component<RollgateErrorBoundaryProps, State> {
  override state: State = { failed: false, error: undefined };

  static getDerivedStateFromError(error: unknown): State {
    return { failed: true, error };
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    const { report, domain, onError } = this.props;
    if (report !== false) reportCaughtError(error, domain === undefined ? {} : { domain });
    try {
      onError?.(error, info);
    } catch {
      // the app's callback must not turn a handled error into an unhandled one
    }
  }

  readonly reset = (): void => {
    this.setState({ failed: false, error: undefined });
  };

  override render(): ReactNode {
    if (!this.state.failed) return this.props.children;
    const { fallback } = this.props;
    return typeof fallback === 'function' ? fallback({ error: this.state.error, reset: this.reset }) : (fallback ?? null);
  }
}
