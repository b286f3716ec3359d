// The shipped pipe (sql/schema/03-stage-and-pipe.sql) for a column selection (--columns): the
// table stays as shipped (unselected columns load as NULL); the pipe's COPY column list and its
// $n select list follow the selection, in the chunk's order. Tested by loading a --columns
// chunk through the generated pipe (test/unit/privacy-mask.test.ts).
//
//   node dist/enricher/output/sql-variant.js record_id,event_time,qname < sql/schema/03-stage-and-pipe.sql
// prints the CREATE OR REPLACE PIPE statement to run instead of the shipped one.

import { readFileSync } from 'node:fs';
import { type ColumnName, parseColumnList } from './csv';

const METADATA_COLUMNS = 'source_file, source_row, loaded_at';

/** The CREATE PIPE statement of `sqlText` (the shipped file), rewritten for `columns`. */
export function pipeSqlForColumns(sqlText: string, columns: readonly ColumnName[]): string {
  parseColumnList(columns);
  const start = sqlText.search(/^CREATE (OR REPLACE )?PIPE\b/im);
  if (start < 0) throw new Error('no CREATE PIPE statement in the SQL text');
  const end = sqlText.indexOf(';', start);
  let pipe = sqlText
    .slice(start, end + 1)
    .replace(/^CREATE (OR REPLACE )?PIPE (IF NOT EXISTS )?/i, 'CREATE OR REPLACE PIPE ');
  const into = /(COPY INTO \w+ \()([^)]*)(\))/i.exec(pipe);
  const select = /(SELECT )([\s\S]*?)(METADATA\$FILENAME)/i.exec(pipe);
  if (into === null || select === null || !into[2]!.includes('source_file'))
    throw new Error('the pipe does not have the shipped COPY INTO (...) SELECT $n ... shape');
  const wrap = (names: readonly string[]) => {
    const lines: string[] = [];
    let line = '';
    for (const n of names) {
      if (line.length + n.length > 90) {
        lines.push(line.trimEnd());
        line = '';
      }
      line += `${n}, `;
    }
    return [...lines, line.trimEnd()].join('\n    ');
  };
  pipe = pipe.replace(into[0], `${into[1]}\n    ${wrap(columns)} ${METADATA_COLUMNS}\n  ${into[3]}`);
  const dollars = columns.map((_, i) => `$${i + 1}`);
  return pipe.replace(select[0], `${select[1]}${wrap(dollars)}\n           ${select[3]}`);
}

if (require.main === module) {
  const cols = parseColumnList((process.argv[2] ?? '').split(',').filter((c) => c !== ''));
  process.stdout.write(`${pipeSqlForColumns(readFileSync(0, 'utf8'), cols)}\n`);
}
