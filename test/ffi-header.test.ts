// The bindings against the header they transcribe: parses cuda/include/dfss.h and asserts that
// ffi/dfss-header.ts declares exactly the same macros, enums, typedefs, struct fields and prototypes, and
// that koffi lays the structs out as a C compiler does. Any change to the header fails here until the
// bindings follow it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import koffi from 'koffi';

import {
  DFSS_ABI_VERSION,
  DFSS_ENUMS,
  DFSS_PROTOTYPES,
  DFSS_STRUCTS,
  DFSS_TYPEDEFS,
  DFSS_VERSION_MAJOR,
  DFSS_VERSION_MINOR,
  DFSS_VERSION_PATCH,
} from '../ffi/dfss-header.js';

// dist/test/ and test/ are both two levels below the checkout (or bundle) root.
const headerPath = fileURLToPath(new URL('../../cuda/include/dfss.h', import.meta.url));

interface ParsedHeader {
  macros: Map<string, number>;
  enums: Map<string, [string, number][]>;
  typedefs: Map<string, string>;
  structs: Map<string, [string, string][]>;
  prototypes: string[];
}

/** C text as a canonical token string: punctuation split off, single spaces, no direction annotations. */
function canonical(text: string): string {
  return text
    .replace(/\b_(Out|In|Inout)_\b/g, ' ')
    .replace(/([*(),[\]])/g, ' $1 ')
    .replace(/\s+/g, ' ')
    .trim();
}

function parseHeader(source: string): ParsedHeader {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/.*$/gm, ' ');
  const macros = new Map<string, number>();
  for (const [, name, value] of code.matchAll(/^\s*#\s*define\s+(DFSS_\w+)\s+(-?\d+)\s*$/gm)) {
    macros.set(name!, Number(value));
  }
  const enums = new Map<string, [string, number][]>();
  for (const [, tag, body, name] of code.matchAll(/typedef\s+enum\s+(\w+)\s*\{([^}]*)\}\s*(\w+)\s*;/g)) {
    assert.equal(name, tag, `enum ${tag}: the typedef name should repeat the tag`);
    const values = body!
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '')
      .map((entry): [string, number] => {
        const match = /^(\w+)\s*=\s*(-?\d+)$/.exec(entry);
        assert.ok(match, `enum ${name}: every value should be written as NAME = number, got "${entry}"`);
        return [match[1]!, Number(match[2])];
      });
    enums.set(name!, values);
  }
  const structs = new Map<string, [string, string][]>();
  for (const [, tag, body, name] of code.matchAll(/typedef\s+struct\s+(\w+)\s*\{([^}]*)\}\s*(\w+)\s*;/g)) {
    assert.equal(name, tag, `struct ${tag}: the typedef name should repeat the tag`);
    const fields = body!
      .split(';')
      .map((field) => field.trim())
      .filter((field) => field !== '')
      .map((field): [string, string] => {
        const match = /^(.*?)\s*\b(\w+)\s*(?:\[\s*(\d+)\s*\])?$/.exec(field.replace(/\s+/g, ' '));
        assert.ok(match, `struct ${name}: cannot read field "${field}"`);
        const type = canonical(match[1]! + (match[3] === undefined ? '' : `[${match[3]}]`));
        return [type, match[2]!];
      });
    structs.set(name!, fields);
  }
  const typedefs = new Map<string, string>();
  for (const [, type, name] of code.matchAll(/typedef\s+((?!enum\b|struct\b)[^;{}]*?)\b(\w+)\s*;/g)) {
    typedefs.set(name!, canonical(type!));
  }
  const prototypes = [...code.matchAll(/\bDFSS_API\s+([^;#]+?)\s*;/g)].map(([, prototype]) => canonical(prototype!));
  return { macros, enums, typedefs, structs, prototypes };
}

/** Size and alignment of the C types the header uses, on the LP64 ABI every supported platform has. */
function cLayout(type: string): { size: number; alignment: number } {
  const array = /^(.*) \[ (\d+) \]$/.exec(type);
  if (array) {
    const element = cLayout(array[1]!);
    return { size: element.size * Number(array[2]), alignment: element.alignment };
  }
  if (type.endsWith('*') || type in DFSS_TYPEDEFS) return { size: 8, alignment: 8 };
  const scalars: Record<string, number> = { char: 1, int32_t: 4, uint32_t: 4, float: 4, int64_t: 8, uint64_t: 8 };
  const size = scalars[type];
  assert.ok(size !== undefined, `no C layout known for field type "${type}"`);
  return { size, alignment: size };
}

const header = existsSync(headerPath) ? parseHeader(readFileSync(headerPath, 'utf8')) : null;
const skip = header === null ? `${headerPath} is not here (a bundle without the header): skipped` : false;

describe('ffi/dfss-header.ts matches cuda/include/dfss.h', { skip }, () => {
  const parsed = header!;

  test('version macros', () => {
    assert.deepEqual(
      Object.fromEntries(parsed.macros),
      { DFSS_VERSION_MAJOR, DFSS_VERSION_MINOR, DFSS_VERSION_PATCH, DFSS_ABI_VERSION },
    );
  });

  test('enums: names, members and values, in order', () => {
    assert.deepEqual(
      [...parsed.enums].map(([name, values]) => [name, values]),
      Object.entries(DFSS_ENUMS).map(([name, values]) => [name, Object.entries(values)]),
    );
  });

  test('typedefs', () => {
    assert.deepEqual(
      Object.fromEntries(parsed.typedefs),
      Object.fromEntries(Object.entries(DFSS_TYPEDEFS).map(([name, type]) => [name, canonical(type)])),
    );
  });

  test('structs: fields in order, with their types', () => {
    assert.deepEqual(
      [...parsed.structs].map(([name, fields]) => [name, fields]),
      Object.entries(DFSS_STRUCTS).map(([name, fields]) => [name, fields.map(([type, field]) => [canonical(type), field])]),
    );
  });

  test('prototypes: every DFSS_API function, in order, with its exact signature', () => {
    assert.deepEqual(parsed.prototypes, Object.values(DFSS_PROTOTYPES).map(canonical));
    for (const [name, prototype] of Object.entries(DFSS_PROTOTYPES)) {
      assert.match(prototype, new RegExp(`[ *]${name}\\(`), `DFSS_PROTOTYPES.${name} declares another function`);
    }
  });

  test('koffi lays out each struct as a C compiler does', () => {
    for (const [name, fields] of parsed.structs) {
      // Declared under another name: koffi names types process-wide and ffi/dfss.ts owns the real ones.
      const koffiType = (fieldType: string) =>
        DFSS_TYPEDEFS[fieldType as keyof typeof DFSS_TYPEDEFS] ?? fieldType.replace(/ \[ (\d+) \]$/, '[$1]');
      const type = koffi.struct(
        `header_test_${name}`,
        Object.fromEntries(fields.map(([fieldType, field]) => [field, koffiType(fieldType)])),
      );
      let offset = 0;
      let alignment = 1;
      const expected: [string, number][] = [];
      for (const [fieldType, field] of fields) {
        const layout = cLayout(fieldType);
        offset = Math.ceil(offset / layout.alignment) * layout.alignment;
        expected.push([field, offset]);
        offset += layout.size;
        alignment = Math.max(alignment, layout.alignment);
      }
      const members = Object.values(koffi.type(type).members!).map((member): [string, number] => [member.name, member.offset]);
      assert.deepEqual(members, expected, `${name}: field offsets`);
      assert.equal(koffi.sizeof(type), Math.ceil(offset / alignment) * alignment, `${name}: size`);
    }
  });
});

describe('the header parser', () => {
  // The comparisons above are only as good as the parser: it must see a change of each kind.
  const base = `
    #define DFSS_ABI_VERSION 1
    typedef enum dfss_dtype { DFSS_DTYPE_FLOAT16 = 0, DFSS_DTYPE_BFLOAT16 = 1 } dfss_dtype;
    typedef void *dfss_stream;
    typedef struct dfss_x { uint32_t a; /* note */ int64_t b[4]; const int32_t *c; } dfss_x;
    DFSS_API dfss_status dfss_f(const dfss_x *desc, void *out);
  `;

  test('reads macros, enums, typedefs, structs and prototypes', () => {
    const parsed = parseHeader(base);
    assert.deepEqual(Object.fromEntries(parsed.macros), { DFSS_ABI_VERSION: 1 });
    assert.deepEqual(parsed.enums.get('dfss_dtype'), [['DFSS_DTYPE_FLOAT16', 0], ['DFSS_DTYPE_BFLOAT16', 1]]);
    assert.deepEqual(Object.fromEntries(parsed.typedefs), { dfss_stream: 'void *' });
    assert.deepEqual(parsed.structs.get('dfss_x'), [['uint32_t', 'a'], ['int64_t [ 4 ]', 'b'], ['const int32_t *', 'c']]);
    assert.deepEqual(parsed.prototypes, ['dfss_status dfss_f ( const dfss_x * desc , void * out )']);
  });

  test('sees a new function, a changed signature, a reordered or retyped field and a changed enum value', () => {
    const before = parseHeader(base);
    const changes = [
      base.replace('DFSS_API dfss_status dfss_f', 'DFSS_API int32_t dfss_g(void);\nDFSS_API dfss_status dfss_f'),
      base.replace('void *out', 'void *out, float *lse'),
      base.replace('const dfss_x *desc', 'dfss_x *desc'),
      base.replace('uint32_t a; /* note */ int64_t b[4];', 'int64_t b[4]; uint32_t a;'),
      base.replace('int64_t b[4]', 'int64_t b[3]'),
      base.replace('uint32_t a', 'int32_t a'),
      base.replace('DFSS_DTYPE_BFLOAT16 = 1', 'DFSS_DTYPE_BFLOAT16 = 2'),
      base.replace('#define DFSS_ABI_VERSION 1', '#define DFSS_ABI_VERSION 2'),
    ];
    for (const changed of changes) assert.notDeepEqual(parseHeader(changed), before, changed);
    assert.deepEqual(parseHeader(base.replace(/ +/g, '   ')), before, 'whitespace alone is no change');
  });
});
