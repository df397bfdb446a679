// What a terminal shows for some bytes: @xterm/headless interprets carriage returns, cleared lines and cursor moves,
// so tests read the screen a person would see rather than the bytes a program wrote.
import xterm from '@xterm/headless';

/** The lines (wrapped ones joined) of the screen and its scrollback after the terminal has interpreted `raw`, trailing blanks dropped. */
export async function screenOf(raw: string, cols: number, rows: number): Promise<string[]> {
  const term = new xterm.Terminal({ cols, rows, scrollback: 10_000, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(raw, resolve));
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buffer.length; i++) {
    const line = buffer.getLine(i);
    const text = line?.translateToString(true) ?? '';
    // A line the terminal wrapped at the right margin continues the one above it.
    if (line?.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  term.dispose();
  while (lines.length > 0 && lines.at(-1)?.trim() === '') lines.pop();
  return lines;
}
