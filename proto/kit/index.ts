// Public surface of proto/kit: the primitives every layer shares. A coded error base, option
// checks, the wire primitives (big-endian u32, varints) and the decoders' carry-over. It
// imports nothing: the other proto/ packages and everything above them build on it. Inside
// proto/, hot paths import the files themselves (bytes.ts ...): CommonJS re-exports are
// getters, one more call per use.
export { readU32, varintSize, writeVarint } from './bytes';
export { type CarryOverSizes, ChunkDecoder, type ChunkDecoderMisuse } from './chunk-decoder';
export { CodedError, type CodedErrorOptions, type CodeOf, isCoded } from './errors';
export { checkInt, checkKnownKeys, intRangeProblem, isIntIn } from './options';
