// Plain-text tables of the command line: the first column left-aligned, the others right-aligned.

/** The rows as lines, columns padded to their widest cell and separated by three spaces. */
export function formatTable(rows: readonly (readonly string[])[], align: 'numbers' | 'left' = 'numbers'): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === 0 || align === 'left' ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('   ')
      .trimEnd(),
  );
}
