// Option checks shared by every module that validates its options at construction: an
// integer in a range, and unknown keys rejected by name. Each caller passes the function
// that builds its own typed error, so codes stay per module while the wording is one.

/** True when `value` is an integer in [min, max]. */
export function isIntIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** `${field} must be an integer in [min, max], got value`: the one wording of a range error. */
export function intRangeProblem(field: string, value: unknown, min: number, max: number): string {
  return `${field} must be an integer in [${min}, ${max}], got ${String(value)}`;
}

/** Returns `value` if it is an integer in [min, max]; throws `fail(message naming field)` otherwise. */
export function checkInt(
  field: string,
  value: unknown,
  min: number,
  max: number,
  fail: (message: string) => Error,
): number {
  if (!isIntIn(value, min, max)) throw fail(intRangeProblem(field, value, min, max));
  return value;
}

/**
 * Rejects keys of `options` outside `allowed`, naming the key, so that a typo fails loudly
 * instead of silently using a default.
 */
export function checkKnownKeys(
  what: string,
  options: object | undefined,
  allowed: ReadonlySet<string> | readonly string[],
  fail: (message: string) => Error,
): void {
  if (options === undefined || options === null) return;
  const has = Array.isArray(allowed)
    ? (k: string) => (allowed as readonly string[]).includes(k)
    : (k: string) => (allowed as ReadonlySet<string>).has(k);
  for (const key of Object.keys(options)) {
    if (!has(key)) {
      const known = [...allowed].join(', ');
      throw fail(`${what}: unknown option "${key}" (known: ${known})`);
    }
  }
}
