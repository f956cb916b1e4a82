import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { InvalidArgumentError } from '../src/errors.js';
import {
  compressedRowSize,
  decodeMetadata,
  decodeMetadataRow,
  encodeMetadata,
  encodeMetadataRow,
  indexBits,
  metadataWordsPerRow,
} from '../src/layout.js';
import { parsePattern } from '../src/pattern.js';

function pattern(text: string) {
  const parsed = parsePattern(text);
  assert.ok(parsed !== null);
  return parsed;
}

describe('sizes', () => {
  test('indexBits is ceil(log2 m)', () => {
    assert.deepEqual([2, 3, 4, 5, 6, 7, 8].map(indexBits), [1, 2, 2, 3, 3, 3, 3]);
    for (const bad of [0, 1, 9, 2.5]) assert.throws(() => indexBits(bad), InvalidArgumentError);
  });

  test('compressedRowSize: C = ceil(Nk / M) * N values, W = ceil(C * b / 32) words, dense has no metadata', () => {
    const cases: Array<[number, string, number, number]> = [
      [9, 'dense', 9, 0],
      [8, '2:4', 4, 1],
      [7, '2:4', 4, 1], // the last group is cut: it still has two slots
      [1024, '2:4', 512, 32],
      [5, '1:2', 3, 1],
      [64, '1:2', 32, 1],
      [66, '1:2', 33, 2],
      [10, '3:8', 6, 1],
      [100, '3:8', 39, 4], // 117 bits
      [64, '1:4', 16, 1],
      [1, '3:5', 3, 1],
    ];
    for (const [seqK, name, values, words] of cases) {
      assert.deepEqual(compressedRowSize(seqK, parsePattern(name)), { values, metadataWords: words }, `${seqK} ${name}`);
    }
    assert.equal(metadataWordsPerRow(11, 8), 2);
    assert.throws(() => compressedRowSize(0, null), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'seqK');
  });
});

describe('hand-computed metadata words', () => {
  test('2:4: groups keeping (0,1), (1,3), (0,2), (2,3) give nibbles 0x4, 0xD, 0x8, 0xE', () => {
    const indices = Int32Array.from([0, 1, 1, 3, 0, 2, 2, 3]);
    const words = encodeMetadata(indices, 1, 8, 4);
    assert.deepEqual([...words], [0xe8d4]);
    assert.deepEqual([...decodeMetadata(words, 1, 8, 4)], [...indices]);
  });

  test('2:4 fills a whole word with 8 groups, two rows are consecutive words', () => {
    // 16 slots of 2 bits = 32 bits: row 0 keeps (2,3) in every group, row 1 keeps (0,1)
    const indices = Int32Array.from([...Array(8).fill([2, 3]).flat(), ...Array(8).fill([0, 1]).flat()]);
    const words = encodeMetadata(indices, 2, 16, 4);
    assert.deepEqual([...words], [0xeeeeeeee, 0x44444444]);
  });

  test('1:2: one bit per group', () => {
    const indices = Int32Array.from([1, 0, 1, 1, 0]);
    assert.deepEqual([...encodeMetadata(indices, 1, 5, 2)], [0b01101]);
  });

  test('3:8: 3-bit indices straddle the word boundary', () => {
    // slot 10 (index 6 = 0b110) takes bits 30, 31 and 32: bits 30 = 0, 31 = 1 of word 0 and bit 0 = 1 of word 1
    const indices = Int32Array.from([0, 3, 7, 1, 2, 6, 0, 4, 5, 3, 6, 7]);
    const words = encodeMetadata(indices, 1, 12, 8);
    assert.deepEqual([...words], [0x9d8323d8, 0xf]);
    assert.deepEqual([...decodeMetadata(words, 1, 12, 8)], [...indices]);
  });
});

describe('round trips', () => {
  let seed = 99;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;

  test('encode then decode gives the indices back, every M and many row widths; unused bits are 0', () => {
    for (let m = 2; m <= 8; m++) {
      for (const valuesPerRow of [1, 2, 3, 7, 10, 11, 16, 21, 32, 33, 63, 100]) {
        const rows = 3;
        const indices = Int32Array.from({ length: rows * valuesPerRow }, () => Math.floor(random() * m));
        const words = encodeMetadata(indices, rows, valuesPerRow, m);
        const wordsPerRow = metadataWordsPerRow(valuesPerRow, m);
        assert.equal(words.length, rows * wordsPerRow);
        assert.deepEqual([...decodeMetadata(words, rows, valuesPerRow, m)], [...indices], `m ${m} C ${valuesPerRow}`);
        const usedBits = valuesPerRow * indexBits(m);
        const spare = wordsPerRow * 32 - usedBits;
        for (let r = 0; r < rows; r++) {
          const last = words[r * wordsPerRow + wordsPerRow - 1];
          if (spare > 0) assert.equal(last >>> (32 - spare), 0, `trailing bits of row ${r}, m ${m}, C ${valuesPerRow}`);
        }
        // each index is exactly in bits [c*b, c*b + b) of its row's stream
        const bits = indexBits(m);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < valuesPerRow; c++) {
            let value = 0;
            for (let t = 0; t < bits; t++) {
              const bit = c * bits + t;
              value |= ((words[r * wordsPerRow + (bit >>> 5)] >>> (bit & 31)) & 1) << t;
            }
            assert.equal(value, indices[r * valuesPerRow + c]);
          }
        }
      }
    }
  });

  test('row functions write only their own words and overwrite stale bits', () => {
    const words = new Uint32Array(4).fill(0xffffffff);
    encodeMetadataRow(Int32Array.from([1, 2, 0]), 0, 3, 3, words, 1);
    assert.deepEqual([...words], [0xffffffff, 0b00_10_01, 0xffffffff, 0xffffffff]);
    const out = new Int32Array(5).fill(-7);
    decodeMetadataRow(words, 1, 3, 3, out, 2);
    assert.deepEqual([...out], [-7, -7, 1, 2, 0]);
  });
});

describe('bad input', () => {
  test('encode rejects indices outside 0 .. m-1 and wrong lengths, naming the argument', () => {
    assert.throws(() => encodeMetadata(Int32Array.from([0, 4]), 1, 2, 4), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'indices[1]');
    assert.throws(() => encodeMetadata(Int32Array.from([-1]), 1, 1, 2), InvalidArgumentError);
    assert.throws(() => encodeMetadata(Int32Array.from([0, 1, 0]), 1, 2, 4), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'indices');
    assert.throws(() => encodeMetadata(Int32Array.from([0]), 1, 1, 9), InvalidArgumentError);
  });

  test('decode rejects words of the wrong length and indices that do not fit the pattern', () => {
    assert.throws(() => decodeMetadata(new Uint32Array(2), 1, 8, 4), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'metadata');
    // M = 3 stores 2 bits, so the value 3 is possible in the bits but not a valid index
    assert.throws(() => decodeMetadata(Uint32Array.from([0b11_00]), 1, 2, 3), /in-group indices 0 \.\. 2/);
    assert.throws(() => decodeMetadata(Uint32Array.from([7]), 1, 1, 5), InvalidArgumentError);
  });

  test('a pattern gives its own sizes', () => {
    const p = pattern('2:4');
    assert.equal(compressedRowSize(13, p).values, 8);
  });
});
