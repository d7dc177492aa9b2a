import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { toCsv } from './csv.ts';

describe('toCsv', () => {
  it('quotes only what RFC 4180 requires, and ends every record with CRLF', () => {
    expect(toCsv(['a', 'b', 'c'], [['plain', 'with, comma', 'say "hi"'], [1.5, null, 'two\nlines']])).toBe(
      'a,b,c\r\nplain,"with, comma","say ""hi"""\r\n1.5,,"two\nlines"\r\n',
    );
  });

  it('makes cells that a spreadsheet would run as formulas plain text, but leaves numbers alone', () => {
    expect(toCsv(['x'], [['=HYPERLINK("http://evil")'], ['@SUM(A1)'], ['+1'], [-5]])).toBe(
      'x\r\n"\'=HYPERLINK(""http://evil"")"\r\n\'@SUM(A1)\r\n\'+1\r\n-5\r\n',
    );
  });

  it('parses back to the same values with an independent RFC 4180 parser', () => {
    const rows = [
      ['O\'Brien, "Bobby"', 'line\r\nbreak', 'ünïcødé ✓', ''],
      ['a', 'b', 'c', 'd'],
    ];
    const parsed = parse(toCsv(['w', 'x', 'y', 'z'], rows), { columns: true, record_delimiter: '\r\n' }) as Record<string, string>[];
    expect(parsed).toEqual(rows.map(([w, x, y, z]) => ({ w, x, y, z })));
  });
});
