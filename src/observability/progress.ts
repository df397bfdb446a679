import type { Logger } from './logger.js';
import { logWriter, type BarHandle, type LogWriter } from './terminal.js';

export interface ProgressCounts {
  docs: number;
  rows: number;
  tokens: number;
  textBytes: number;
}

const BAR_FORMAT =
  '{bar} {percentage}% | {value}/{total} docs | {docsPerSec} docs/s | {tokensPerSec} tok/s | {mbPerSec} MB/s | ETA {eta_formatted}';

/**
 * Progress of a local run: a bar with docs/s, tokens/s, MB/s and ETA under the log lines on a terminal, periodic log
 * lines otherwise (so CI logs and `kubectl logs` stay readable).
 */
export class Progress {
  readonly counts: ProgressCounts = { docs: 0, rows: 0, tokens: 0, textBytes: 0 };
  private readonly started = Date.now();
  private readonly bar?: BarHandle;
  private readonly timer?: NodeJS.Timeout;

  constructor(
    private readonly totalDocs: number,
    private readonly logger: Logger,
    intervalMs = 10_000,
    writer: LogWriter = logWriter,
  ) {
    if (writer.showsBar) {
      this.bar = writer.startBar(BAR_FORMAT, totalDocs, this.rates());
    } else {
      this.timer = setInterval(
        () =>
          this.logger.info({ progress: { ...this.counts, total_docs: this.totalDocs, ...this.rates() } }, 'progress'),
        intervalMs,
      );
      this.timer.unref();
    }
  }

  add(delta: ProgressCounts): void {
    this.counts.docs += delta.docs;
    this.counts.rows += delta.rows;
    this.counts.tokens += delta.tokens;
    this.counts.textBytes += delta.textBytes;
    this.bar?.update(this.counts.docs, this.rates());
  }

  rates(): { docsPerSec: number; tokensPerSec: number; mbPerSec: number; seconds: number } {
    const seconds = Math.max((Date.now() - this.started) / 1000, 1e-3);
    return {
      seconds: Math.round(seconds * 10) / 10,
      docsPerSec: Math.round(this.counts.docs / seconds),
      tokensPerSec: Math.round(this.counts.tokens / seconds),
      mbPerSec: Math.round((this.counts.textBytes / 1e6 / seconds) * 100) / 100,
    };
  }

  stop(): void {
    this.bar?.stop();
    if (this.timer) clearInterval(this.timer);
  }
}
