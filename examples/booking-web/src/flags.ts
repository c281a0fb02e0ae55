import { OpenFeature } from '@openfeature/web-sdk';
import { RollgateWebProvider } from '@rollgate/web';
import { currentSession } from './session';

// One provider for the page. It asks for the token before every request, so a new login (or a
// refreshed token) is used at once; the targetingKey in the context only tells it the identity
// changed — the server takes the identity from the token, never from the context.
//
// What users live through, for the guarded rollout (docs/user-signals.md): uncaught errors and
// unhandled rejections of this page (a fingerprint and a scrubbed message, never the stack), a page
// view per sign-in (the denominator of the client-error guard), the checkout's time
// (startTask in App.tsx) and the feedback prompt — all to the server's events endpoint, which
// counts them in the arm IT serves this user.
const provider = new RollgateWebProvider({
  headersFactory: () => {
    const token = currentSession()?.token;
    return token ? { Authorization: `Bearer ${token}` } : {};
  },
  captureErrors: true,
  pageviews: true,
});

let registered = false;

/** Loads the flags of the signed-in user (first time: registers the provider). */
export async function loadFlagsFor(user: string): Promise<void> {
  const context = { targetingKey: user };
  if (!registered) {
    registered = true;
    await OpenFeature.setProviderAndWait(provider, context);
  } else {
    await OpenFeature.setContext(context);
  }
}
