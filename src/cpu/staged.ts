// The three staged operations of the paper on the CPU, reading and writing the compressed layout of
// cuda/include/dfss.h (src/layout.ts): sddmmPrune -> compressedSoftmax -> spmm. Every per-row step is the one
// of the fused forward (rows.ts), so staged and fused results differ only by the rounding of the compressed
// scores to the dtype between the first two steps.

import { rounderFor } from '../dtype.js';
import { InvalidArgumentError } from '../errors.js';
import { compressedRowSize, decodeMetadataRow, encodeMetadataRow } from '../layout.js';
import type { AttentionProblem } from '../problem.js';
import {
  accumulateRow,
  allowedKeyCount,
  computeScores,
  outputSpan,
  requireInputs,
  requireValidLengths,
  requireLength,
  RowScratch,
  selectSlots,
  slotKeys,
  softmaxRow,
  validLength,
  writeRow,
} from './rows.js';

export interface CompressedScores {
  /** [B, Hq, Nq, C] kept scaled scores rounded to the dtype; -inf in slots of masked or past-the-end keys. */
  readonly values: Float32Array;
  /** [B, Hq, Nq, W] in-group indices of the kept slots; null for dense. */
  readonly metadata: Uint32Array | null;
}

export interface CompressedProbabilities {
  /** [B, Hq, Nq, C] probabilities rounded to the dtype (0 where the score was not finite). */
  readonly probs: Float32Array;
  /** [B, Hq, Nq] log-sum-exp of each row (float32, -inf for rows with no finite score). */
  readonly lse: Float32Array;
}

function rowCount(problem: AttentionProblem): number {
  return problem.batch * problem.headsQ * problem.seqQ;
}

/** Staged step 1: scaled, masked, pruned scores of q k^T in the compressed layout (steps 1-3). */
export function sddmmPrune(problem: AttentionProblem, q: Float32Array, k: Float32Array): CompressedScores {
  const { batch, headsQ, headsKv, seqQ, seqK, headDim, pattern, causal } = problem;
  requireInputs(problem, { q, k });
  requireValidLengths(problem);
  const { values: slots, metadataWords } = compressedRowSize(seqK, pattern);
  const values = new Float32Array(rowCount(problem) * slots);
  const metadata = pattern === null ? null : new Uint32Array(rowCount(problem) * metadataWords);

  const round = rounderFor(problem.dtype);
  const scale32 = Math.fround(problem.scale);
  const headsPerKv = headsQ / headsKv;
  const [qsB, qsH, qsN] = problem.qStrides;
  const [ksB, ksH, ksN] = problem.kStrides;
  const { scores, inGroup, keys, identity } = new RowScratch(seqK, slots, 1);

  for (let b = 0; b < batch; b++) {
    const validQ = validLength(problem.seqlensQ, b, seqQ);
    const validK = validLength(problem.seqlensK, b, seqK);
    for (let h = 0; h < headsQ; h++) {
      const kBase = b * ksB + Math.floor(h / headsPerKv) * ksH;
      for (let i = 0; i < seqQ; i++) {
        const row = (b * headsQ + h) * seqQ + i;
        const allowed = allowedKeyCount(causal, i, validQ, validK);
        if (allowed > 0) computeScores(q, b * qsB + h * qsH + i * qsN, k, kBase, ksN, headDim, allowed, scale32, scores);
        let rowKeys = identity;
        if (pattern !== null) {
          selectSlots(scores, allowed, pattern, slots, inGroup, keys);
          encodeMetadataRow(inGroup, 0, slots, pattern.m, metadata as Uint32Array, row * metadataWords);
          rowKeys = keys;
        }
        const base = row * slots;
        for (let c = 0; c < slots; c++) {
          const key = rowKeys[c];
          values[base + c] = key < allowed ? round(scores[key]) : -Infinity;
        }
      }
    }
  }
  return { values, metadata };
}

/**
 * Staged step 2: softmax over each compressed row (steps 4, 6 and 7), probabilities rounded to the dtype.
 * probs may be given to receive them, and may be `values` itself (in place); otherwise a new array is made.
 */
export function compressedSoftmax(
  problem: AttentionProblem,
  values: Float32Array,
  probs: Float32Array = new Float32Array(values.length),
): CompressedProbabilities {
  const { values: slots } = compressedRowSize(problem.seqK, problem.pattern);
  const rows = rowCount(problem);
  requireExactLength('values', values, rows * slots, '[B, Hq, Nq, C]');
  requireExactLength('probs', probs, rows * slots, '[B, Hq, Nq, C]');
  const round = rounderFor(problem.dtype);
  const exps = new Float64Array(slots);
  const lse = new Float32Array(rows);
  for (let row = 0; row < rows; row++) lse[row] = softmaxRow(values, row * slots, slots, round, probs, row * slots, exps);
  return { probs, lse };
}

/**
 * Staged step 3: out = P V with P the compressed probabilities and their metadata (null only for dense).
 * Written to out (by problem.outStrides, rounded to the dtype), a new array when not given. Slots with
 * probability 0, and slots whose key lies past the batch entry's Nk_b (seqlensK, else Nk), contribute nothing: v's
 * rows past Nk_b (padding) are never read.
 */
export function spmm(
  problem: AttentionProblem,
  probs: Float32Array,
  metadata: Uint32Array | null,
  v: Float32Array,
  out: Float32Array = new Float32Array(outputSpan(problem)),
): Float32Array {
  const { batch, headsQ, headsKv, seqQ, seqK, headDimV, pattern } = problem;
  const { values: slots, metadataWords } = compressedRowSize(seqK, pattern);
  requireExactLength('probs', probs, rowCount(problem) * slots, '[B, Hq, Nq, C]');
  if (pattern === null) {
    if (metadata !== null) throw new InvalidArgumentError('metadata', 'null for the dense pattern', metadata);
  } else if (metadata === null) {
    throw new InvalidArgumentError('metadata', `[B, Hq, Nq, W] uint32 words for pattern ${pattern.n}:${pattern.m}`, null);
  } else {
    requireExactLength('metadata', metadata, rowCount(problem) * metadataWords, '[B, Hq, Nq, W]');
  }
  requireInputs(problem, { v });
  requireLength('out', out, outputSpan(problem), 'out shape and strides');

  const round = rounderFor(problem.dtype);
  const headsPerKv = headsQ / headsKv;
  const [vsB, vsH, vsN] = problem.vStrides;
  const [osB, osH, osN] = problem.outStrides;
  const { inGroup, keys, identity, acc, liveRows, liveWeights } = new RowScratch(seqK, slots, headDimV);

  for (let b = 0; b < batch; b++) {
    const validK = validLength(problem.seqlensK, b, seqK); // v is read at keys below Nk_b only
    for (let h = 0; h < headsQ; h++) {
      const vBase = b * vsB + Math.floor(h / headsPerKv) * vsH;
      for (let i = 0; i < seqQ; i++) {
        const row = (b * headsQ + h) * seqQ + i;
        let rowKeys = identity;
        if (pattern !== null) {
          decodeMetadataRow(metadata as Uint32Array, row * metadataWords, slots, pattern.m, inGroup, 0);
          slotKeys(inGroup, slots, pattern.n, pattern.m, keys);
          rowKeys = keys;
        }
        accumulateRow(probs, row * slots, rowKeys, slots, validK, v, vBase, vsN, headDimV, acc, liveRows, liveWeights);
        writeRow(acc, headDimV, round, out, b * osB + h * osH + i * osN);
      }
    }
  }
  return out;
}

function requireExactLength(argument: string, array: ArrayLike<number>, needed: number, what: string): void {
  if (array.length !== needed) {
    throw new InvalidArgumentError(argument, `${needed} elements (${what})`, `${array.length} elements`);
  }
}
