/**
 * Text sizes for layout, estimated without a DOM so the same chart lays out identically in a
 * test, in `npm run charts` and in the inspector. The estimates err wide, so labels never
 * overflow their boxes whichever sans-serif font the viewer has.
 */

export const TITLE_HEIGHT = 26;
export const LINE_HEIGHT = 16;

const NARROW = new Set('iljtfrI.,:;!|()[] \'"');
const WIDE = new Set('mwMW@%→');

/** Approximate advance width of `text` at `size` px in a common sans-serif font. */
export function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    if (NARROW.has(ch)) em += 0.32;
    else if (WIDE.has(ch)) em += 0.9;
    else if (ch >= 'A' && ch <= 'Z') em += 0.65;
    else em += 0.56;
  }
  return Math.ceil(em * size * (bold ? 1.08 : 1));
}

/** Greedy line wrapping of items (measured by their `label`) into lines at most `maxWidth` wide. */
export function wrapWords<T>(
  items: readonly T[],
  label: (item: T) => string,
  maxWidth: number,
): T[][] {
  const lines: T[][] = [];
  let line: T[] = [];
  let width = 0;
  for (const item of items) {
    const w = textWidth(label(item), 10.5) + 10;
    if (line.length > 0 && width + w > maxWidth) {
      lines.push(line);
      line = [];
      width = 0;
    }
    line.push(item);
    width += w;
  }
  if (line.length > 0) lines.push(line);
  return lines;
}
