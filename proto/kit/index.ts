// Public surface of proto/kit: the primitives every layer shares. A coded error base, option
// checks and the wire primitives (big-endian u32, varints). It imports nothing: the other
// proto/ packages and everything above them build on it.
export { readU32, varintSize, writeVarint } from './bytes';
export { CodedError, type CodedErrorOptions, type CodeOf, isCoded } from './errors';
export { checkInt, checkKnownKeys, intRangeProblem, isIntIn } from './options';
