// Element-wise comparison of a GPU result with the CPU reference: how many elements differ and where the first
// one is, so that a report can say what went wrong without printing whole tensors.
import type { DType } from '../dtype.js';

export interface Mismatch {
  /** Elements that differ (0: the results agree). */
  count: number;
  /** The first difference, e.g. "element 12 (row 3): got 0.5, expected 0.25"; empty when none. */
  first: string;
}

/** Which rows to compare (a row is `rowLength` consecutive elements); all when omitted. */
export type RowFilter = (row: number) => boolean;

function lengthMismatch(got: ArrayLike<number>, want: ArrayLike<number>): Mismatch | null {
  if (got.length === want.length) return null;
  return { count: Math.max(got.length, want.length), first: `length ${got.length}, expected ${want.length}` };
}

/** The elements of got that fail `matches` against want, over the rows `use` keeps; the first named by `describe`. */
function compareElements(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rowLength: number,
  use: RowFilter | undefined,
  matches: (g: number, w: number) => boolean,
  describe: (g: number, w: number) => string,
): Mismatch {
  const wrongLength = lengthMismatch(got, want);
  if (wrongLength) return wrongLength;
  let count = 0;
  let first = '';
  for (let i = 0; i < got.length; i++) {
    if ((use && !use(Math.floor(i / rowLength))) || matches(got[i], want[i])) continue;
    if (count === 0) first = `element ${i} (row ${Math.floor(i / rowLength)})${describe(got[i], want[i])}`;
    count++;
  }
  return { count, first };
}

/** Elements where |got - want| > atol + rtol |want| (NaN in got always counts), over the rows `use` keeps. */
export function compareClose(
  got: Float32Array,
  want: Float32Array,
  rowLength: number,
  atol: number,
  rtol: number,
  use?: RowFilter,
): Mismatch {
  const close = (g: number, w: number) => g === w || Math.abs(g - w) <= atol + rtol * Math.abs(w);
  return compareElements(got, want, rowLength, use, close, (g, w) => `: got ${g}, expected ${w}`);
}

/** Elements whose bits differ (raw elements: two NaNs count as equal), over the rows `use` keeps. */
export function compareBits(got: ArrayLike<number>, want: ArrayLike<number>, rowLength: number, use?: RowFilter): Mismatch {
  const same = (g: number, w: number) => g === w || (Number.isNaN(g) && Number.isNaN(w));
  return compareElements(got, want, rowLength, use, same, (g, w) => ` is ${g}, expected ${w} (bit-exact)`);
}

/** One unit in the last place of the dtype, relative: the difference one rounding of a score can make. */
export function ulp(dtype: DType): number {
  return dtype === 'float16' ? 2 ** -10 : dtype === 'bfloat16' ? 2 ** -7 : 2 ** -20;
}
