import { useCallback, useRef, useState } from 'react';
import { ApiError, newWriteId } from './api';
import { useDashboardContext } from './state';

// Running a write from a view: busy and error state, a reload after it, and on a version
// conflict a reload too — the view then explains the conflict from the fresh state.

export interface Conflict {
  /** The version the write was pinned to (store version, or planVersion for plans). */
  pinned: number;
  key: string;
  kind: 'flag' | 'evaluator' | 'plan';
}

export function useWrite() {
  const { reload } = useDashboardContext();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  // the Idempotency-Key of the write being confirmed: kept for a retry after an unknown outcome,
  // new for anything else
  const writeId = useRef(newWriteId());
  const run = useCallback(
    async (target: Conflict, write: (writeId: string) => Promise<unknown>): Promise<'done' | 'conflict' | 'failed'> => {
      setBusy(true);
      setError(null);
      try {
        await write(writeId.current);
        writeId.current = newWriteId();
        setConflict(null);
        await reload();
        return 'done';
      } catch (e) {
        if (e instanceof ApiError && e.kind === 'conflict') {
          writeId.current = newWriteId();
          await reload();
          setConflict(target);
          return 'conflict';
        }
        // an outcome nobody knows (no answer, or the server could not read it back) is retried with
        // the same key: applied at most once. Anything else was not applied: the next try is a new write.
        const unknown = e instanceof ApiError && (e.kind === 'network' || e.body.error === 'write_outcome_unknown');
        if (!unknown) writeId.current = newWriteId();
        setError(e);
        return 'failed';
      } finally {
        setBusy(false);
      }
    },
    [reload],
  );
  const start = useCallback(() => {
    writeId.current = newWriteId();
    setError(null);
    setConflict(null);
  }, []);
  return { busy, error, conflict, run, start, clearError: () => setError(null), clearConflict: () => setConflict(null) };
}
