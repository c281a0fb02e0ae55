import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { loadFlagsFor } from './flags';
import { currentSession } from './session';

// Back from a reload while signed in: start loading that user's flags before the first render.
const session = currentSession();
if (session) void loadFlagsFor(session.user).catch(() => undefined);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
