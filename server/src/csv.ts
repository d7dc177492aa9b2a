/**
 * CSV as RFC 4180 writes it: CRLF between records, and a field quoted (with its quotes doubled) when it
 * holds a comma, a quote or a line break.
 */

export type CsvValue = string | number | null;

// A spreadsheet runs a cell starting with one of these as a formula, and visitor names are chosen by
// anyone on the web; a leading apostrophe makes the cell text again (OWASP "CSV injection").
const FORMULA_START = /^[=+\-@\t\r]/;

function field(value: CsvValue): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A header row then one record per row, every record ending in CRLF. */
export function toCsv(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return [header, ...rows].map((row) => `${row.map(field).join(',')}\r\n`).join('');
}
