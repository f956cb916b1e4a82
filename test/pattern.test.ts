import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { InvalidArgumentError } from '../src/errors.js';
import { formatPattern, keptFraction, parsePattern, type Pattern } from '../src/pattern.js';

describe('parsePattern', () => {
  test("'dense', null and undefined mean no pruning", () => {
    assert.equal(parsePattern('dense'), null);
    assert.equal(parsePattern('Dense'), null);
    assert.equal(parsePattern(null), null);
    assert.equal(parsePattern(undefined), null);
  });

  test("'N:M' strings and {n, m} objects give a frozen pattern", () => {
    assert.deepEqual(parsePattern('2:4'), { n: 2, m: 4 });
    assert.deepEqual(parsePattern('1:2'), { n: 1, m: 2 });
    assert.deepEqual(parsePattern(' 3 : 8 '), { n: 3, m: 8 });
    assert.deepEqual(parsePattern({ n: 7, m: 8 }), { n: 7, m: 8 });
    const parsed = parsePattern('1:4');
    assert.ok(parsed !== null && Object.isFrozen(parsed));
    const input = { n: 2, m: 4 };
    assert.notEqual(parsePattern(input), input, 'a copy, so later changes to the input do not leak in');
  });

  test('every pattern with 1 <= N < M <= 8 is accepted', () => {
    let count = 0;
    for (let m = 2; m <= 8; m++) {
      for (let n = 1; n < m; n++) {
        assert.deepEqual(parsePattern(`${n}:${m}`), { n, m });
        count++;
      }
    }
    assert.equal(count, 28);
  });

  test('invalid patterns are InvalidArgumentErrors naming the argument and the expected forms', () => {
    const bad: unknown[] = ['0:4', '4:2', '1:9', '9:10', '2/4', '2:4:8', '', 'sparse', '-1:2', '1.5:4', 24, true, { n: 1 }, { n: 1, m: 2.5 }, { n: '1', m: '2' }];
    for (const value of bad) {
      assert.throws(
        () => parsePattern(value as string),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.argument === 'pattern' &&
          e.message.includes("'dense'") &&
          e.message.includes('N:M'),
        `${String(value)}`,
      );
    }
  });

  test("M:M is rejected with a hint to use 'dense'", () => {
    assert.throws(() => parsePattern('4:4'), /4:4 keeps every key, use 'dense'/);
    assert.throws(() => parsePattern({ n: 2, m: 2 }), /use 'dense'/);
  });

  test('the argument name is the one given', () => {
    assert.throws(
      () => parsePattern('2:3:4', '--pattern'),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === '--pattern' && e.message.startsWith('--pattern: expected'),
    );
  });
});

describe('formatPattern and keptFraction', () => {
  test('formatPattern is the inverse of parsePattern', () => {
    assert.equal(formatPattern(null), 'dense');
    for (const text of ['1:2', '2:4', '3:8', '1:4']) assert.equal(formatPattern(parsePattern(text)), text);
  });

  test('keptFraction is N / M, 1 for dense', () => {
    const cases: Array<[Pattern | null, number]> = [
      [null, 1],
      [{ n: 2, m: 4 }, 0.5],
      [{ n: 1, m: 4 }, 0.25],
      [{ n: 3, m: 8 }, 0.375],
    ];
    for (const [p, fraction] of cases) assert.equal(keptFraction(p), fraction);
  });
});
