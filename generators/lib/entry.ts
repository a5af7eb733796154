import { isPtqError } from '../../compiler/src/errors';

/**
 * Nx prints only the message of an error a generator throws: a PtqError's fix goes into the
 * message, so `nx g` shows `<what is wrong> (fix: <what to do>)` in one line, no stack.
 */
export function forNx(e: unknown): unknown {
  if (!isPtqError(e)) return e;
  const err = new Error(e.oneLine().replace(/^ERROR /, ''));
  err.stack = err.message; // `--verbose` would print it: there is no bug to trace
  return err;
}
