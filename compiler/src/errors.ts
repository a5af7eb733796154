/**
 * Errors a user can cause (bad config, bad model, missing data, bad path) are PtqErrors:
 * a stable code, the key/node/file they concern, and a one-line fix. The CLI prints
 * `oneLine()` without a stack trace and exits with code 2. Internal bugs throw plain Errors.
 */
export class PtqError extends Error {
  readonly code: string;
  readonly subject?: string;
  readonly fix?: string;

  constructor(code: string, message: string, opts: { subject?: string; fix?: string } = {}) {
    super(message);
    this.name = 'PtqError';
    this.code = code;
    this.subject = opts.subject;
    this.fix = opts.fix;
  }

  /** The single line shown to the user. */
  oneLine(): string {
    const text = this.message.replace(/\s*\n\s*/g, ' ');
    return this.fix ? `ERROR ${text} (fix: ${this.fix})` : `ERROR ${text}`;
  }
}

export function isPtqError(e: unknown): e is PtqError {
  return e instanceof PtqError;
}
