// The one base of Snowtap's typed errors. Every module declares its codes the same way:
//
//   export const FooErrorCode = { BAD: 'FOO_BAD', ... } as const;
//   export type FooErrorCode = CodeOf<typeof FooErrorCode>;
//   export class FooError extends CodedError<FooErrorCode> { override readonly name = 'FooError'; }
//
// `code` is stable (log fields, metric labels and tests branch on it), the message is for
// people. Lives in proto/ because the wire-format errors extend it and proto/ imports nothing
// above itself; agent/, enricher/, common/ and cli/ import it through proto/kit/index.ts.

/** The union of the values of a `{ NAME: 'CODE' } as const` table. */
export type CodeOf<T extends Record<string, string>> = T[keyof T];

export interface CodedErrorOptions {
  /** The underlying error, when this one wraps another. */
  cause?: unknown;
}

export class CodedError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: CodedErrorOptions) {
    // No `cause` key at all when there is none (an explicit `cause: undefined` shows in util.inspect).
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** True for an instance of `type` (a CodedError subclass), optionally with the given code. */
export function isCoded<E extends CodedError>(
  err: unknown,
  type: abstract new (...args: never[]) => E,
  code?: E['code'],
): err is E {
  return err instanceof type && (code === undefined || err.code === code);
}
