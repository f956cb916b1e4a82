// `dfss attention q.npy k.npy v.npy -o out.npy`: attention of arrays read from .npy files, written as float32
// .npy (and, on request, the log-sum-exp of each row).
import { PIPELINES } from '../backend.js';
import { Tensor, attention, attentionWithLse, resolveBackend } from '../index.js';
import { DTYPES, decodeFloat16, type DType } from '../dtype.js';
import { DfssError } from '../errors.js';
import { BACKEND_CHOICES, parseArgs, parseChoice, parseFiniteNumber, parsePatternFlag, UsageError } from './args.js';
import { ATTENTION_HELP } from './help.js';
import { NpyFileError, readNpy, writeNpyFloat32, type NpyArray } from './npy.js';

const FLAGS = {
  output: { kind: 'string', short: 'o' },
  pattern: { kind: 'string' },
  dtype: { kind: 'string' },
  causal: { kind: 'boolean' },
  scale: { kind: 'string' },
  backend: { kind: 'string' },
  pipeline: { kind: 'string' },
  lse: { kind: 'string' },
  help: { kind: 'boolean', short: 'h' },
} as const;

export async function runAttentionCommand(argv: readonly string[]): Promise<void> {
  const { flags, positionals } = parseArgs(argv, FLAGS);
  if (flags.help) {
    process.stdout.write(ATTENTION_HELP);
    return;
  }
  if (positionals.length !== 3) {
    throw new UsageError(`expected three input files q.npy k.npy v.npy, got ${positionals.length}`);
  }
  if (flags.output === undefined) throw new UsageError('-o/--output is required: the .npy file to write the output to');
  const dtype = parseChoice('dtype', flags.dtype ?? 'float16', DTYPES);
  const pattern = parsePatternFlag('pattern', flags.pattern ?? '2:4');
  const scale = flags.scale === undefined ? undefined : parseFiniteNumber('scale', flags.scale);
  const backendChoice = parseChoice('backend', flags.backend ?? 'auto', BACKEND_CHOICES);
  const pipeline = parseChoice('pipeline', flags.pipeline ?? 'fused', PIPELINES);
  // 'auto' takes CUDA only where libdfss implements this dtype and pattern; 'cuda' fails here if it cannot run.
  const backend = resolveBackend(backendChoice, { device: 'cpu', dtype, pattern });

  const arrays = await Promise.all(positionals.map((file) => readNpy(file)));
  const tensors: Tensor[] = [];
  try {
    for (const [index, name] of (['q', 'k', 'v'] as const).entries()) {
      tensors.push(toTensor(arrays[index], positionals[index], name, dtype));
    }
    const [q, k, v] = tensors;
    const options = { pattern, causal: flags.causal === true, scale, backend, pipeline };
    if (flags.lse === undefined) {
      const out = await attention(q, k, v, options);
      tensors.push(out);
      await writeNpyFloat32(flags.output, await out.toFloat32Array(), out.shape);
    } else {
      const { out, lse } = await attentionWithLse(q, k, v, options);
      tensors.push(out, lse);
      await writeNpyFloat32(flags.output, await out.toFloat32Array(), out.shape);
      await writeNpyFloat32(flags.lse, await lse.toFloat32Array(), lse.shape);
    }
  } finally {
    for (const tensor of tensors) tensor.dispose();
  }
}

/** The array as a host [B, H, N, D] tensor of `dtype` (the library moves it to the backend's device); the file
 * is named if the array is not 4-d. */
function toTensor(array: NpyArray, file: string, name: string, dtype: DType): Tensor {
  if (array.shape.length !== 4) {
    throw new NpyFileError(file, `${name} must have 4 dimensions [B, H, N, D], got shape [${array.shape.join(', ')}]`);
  }
  // float16 values are exact in float32, so decoding first and then rounding to `dtype` loses nothing.
  const values = array.dtype === 'float16' ? decodeFloat16(array.data) : array.data;
  try {
    return Tensor.fromArray(values, array.shape, { dtype });
  } catch (error) {
    // e.g. an empty dimension: say which file holds the array the library refused.
    if (error instanceof DfssError) throw new NpyFileError(file, `${name}: ${error.message}`);
    throw error;
  }
}
