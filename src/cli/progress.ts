// A progress bar on stderr for the long commands (check, bench). On a terminal it is redrawn in place and cleared
// at the end; elsewhere (a log, a pipe) it prints a line at every tenth of the way, so logs stay short.

export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #label: string;
  readonly #total: number;
  #done = 0;
  #lastTenth = -1;

  constructor(label: string, total: number, stream: ProgressStream = process.stderr) {
    this.#label = label;
    this.#total = Math.max(total, 1);
    this.#stream = stream;
  }

  /** Marks one more step done; `detail` names what runs next (or what just finished). */
  tick(detail: string): void {
    this.#done = Math.min(this.#done + 1, this.#total);
    this.#draw(detail);
  }

  /** Shows `detail` as the step in progress, without counting a step. */
  show(detail: string): void {
    if (this.#stream.isTTY) this.#draw(detail);
  }

  /** Clears the bar from a terminal; elsewhere nothing more is printed. */
  finish(): void {
    if (this.#stream.isTTY) this.#stream.write('\r\x1b[K');
  }

  #draw(detail: string): void {
    const fraction = this.#done / this.#total;
    const counter = `${this.#done}/${this.#total}`;
    if (this.#stream.isTTY) {
      const width = 24;
      const filled = Math.round(fraction * width);
      const line = `${this.#label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${counter} ${detail}`;
      const columns = this.#stream.columns || 80; // 0 where the terminal size is unknown
      this.#stream.write(`\r\x1b[K${line.slice(0, Math.max(columns - 1, 10))}`);
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth === this.#lastTenth) return;
    this.#lastTenth = tenth;
    this.#stream.write(`${this.#label} ${String(Math.round(fraction * 100)).padStart(3)}% ${counter} ${detail}\n`);
  }
}
