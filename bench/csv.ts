/**
 * Minimal reader for the benchmark CSVs: a header line, then numeric cells, no quoting.
 * Number() is used for the cells because it rounds correctly, like pandas' round_trip parser.
 */
import { readFileSync } from 'node:fs';

/** A labelled numeric data set, features row-major. */
export interface LabelledData {
  readonly featureNames: string[];
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
  readonly labels: Float64Array;
}

/** Parse `file`; the column named `labelColumn` becomes `labels` and is left out of the features. */
export function readLabelledCsv(file: string, labelColumn: string): LabelledData {
  const text = readFileSync(file, 'latin1');
  let pos = 0;
  const nextLine = (): string | null => {
    while (pos < text.length) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = text.length;
      let line = text.slice(pos, end);
      pos = end + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length > 0) return line;
    }
    return null;
  };
  const header = nextLine();
  if (header === null) throw new Error(`${file}: empty file`);
  const names = header.split(',').map((s) => s.trim());
  const labelAt = names.indexOf(labelColumn);
  if (labelAt < 0) throw new Error(`${file}: no column named ${labelColumn} in the header`);
  const cols = names.length - 1;
  let cap = 1024;
  let data = new Float64Array(cap * cols);
  let labels = new Float64Array(cap);
  let rows = 0;
  for (let line = nextLine(); line !== null; line = nextLine()) {
    const cells = line.split(',');
    if (cells.length !== names.length) {
      throw new Error(`${file}: data row ${rows + 1} has ${cells.length} cells, expected ${names.length}`);
    }
    if (rows === cap) {
      cap *= 2;
      const d = new Float64Array(cap * cols);
      d.set(data);
      data = d;
      const l = new Float64Array(cap);
      l.set(labels);
      labels = l;
    }
    let c = 0;
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i].trim();
      const v = cell === '' ? NaN : Number(cell);
      if (i === labelAt) labels[rows] = v;
      else data[rows * cols + c++] = v;
    }
    rows++;
  }
  return {
    featureNames: names.filter((_, i) => i !== labelAt),
    data: data.slice(0, rows * cols),
    rows,
    cols,
    labels: labels.slice(0, rows),
  };
}
