import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { prettyFactory, type MessageFormatFunc } from 'pino-pretty';

/** `--log-format`: `auto` is pretty on a terminal and JSON lines anywhere else (Ray jobs, CronJobs, pipes, CI). */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

export interface LogSettings {
  format: LogFormat;
  /** Also show the routine per-task and per-dump lines on the terminal (the JSON face always has them). */
  verbose: boolean;
}

/** One pino line, as far as the terminal face reads it. */
export type LogEntry = Record<string, unknown> & { level?: unknown };

/** The few fields a person needs on a line, under short names; bindings such as output_prefix stay in the JSON. */
const SHOWN_FIELDS: readonly (readonly [key: string, label: string])[] = [
  ['task_id', 'task'],
  ['job_id', 'job'],
  ['dump', 'dump'],
  ['file', 'file'],
  ['tasks', 'tasks'],
  ['docs', 'docs'],
];

const WARN = 40;
const ERROR = 50;

/**
 * Per-task and per-dump lines at info level ("dump scanned", "task started", "task done"): on a terminal the bar and
 * the closing summary say the same, so they show only with `-v`. Warnings and errors always show.
 */
export function isRoutine(entry: LogEntry): boolean {
  return (
    typeof entry.level === 'number' && entry.level < WARN && (entry.task_id !== undefined || entry.dump !== undefined)
  );
}

/** The text after the level: message, the fields that matter, then the error, coloured by level. */
export const messageLine: MessageFormatFunc = (log, messageKey, _levelLabel, { colors }) => {
  const fields = SHOWN_FIELDS.flatMap(([key, label]) =>
    log[key] === undefined ? [] : [`${label}=${scalar(log[key])}`],
  );
  const progress = log.progress as { docs?: number; total_docs?: number; docsPerSec?: number } | undefined;
  if (progress) fields.push(`docs=${progress.docs}/${progress.total_docs}`, `docs/s=${progress.docsPerSec}`);
  const text = [scalar(log[messageKey] ?? ''), ...fields].join(' ') + (log.err === undefined ? '' : errorText(log.err));
  const level = typeof log.level === 'number' ? log.level : 0;
  return level >= ERROR ? colors.red(text) : level >= WARN ? colors.yellow(text) : text;
};

function scalar(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

/** Our log calls pass `err` as a message; pino's serializer turns an Error into an object with one. */
function errorText(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return `: ${typeof message === 'string' ? message : scalar(err)}`;
}

export interface BarHandle {
  update(value: number, payload: Record<string, unknown>): void;
  stop(): void;
}

/**
 * The one writer of stderr, shared by the log and the progress bar. It is pino's destination: JSON lines go out
 * unchanged (pino's own synchronous fd 2 writer, as before), or, on a terminal, each line is rendered by pino-pretty
 * and handed to cli-progress, which prints it above the bar at its next redraw, so a log line never lands on the bar.
 */
export class LogWriter {
  private readonly json = pino.destination({ dest: 2, sync: true });
  private pretty?: (entry: LogEntry) => string;
  private verbose = false;
  private bars?: cliProgress.MultiBar;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  configure(settings: LogSettings): void {
    const tty = this.stream.isTTY === true;
    this.verbose = settings.verbose;
    this.pretty =
      settings.format === 'pretty' || (settings.format === 'auto' && tty)
        ? prettyFactory({
            colorize: tty && process.env.NO_COLOR === undefined,
            translateTime: 'SYS:HH:MM:ss',
            ignore: 'pid,hostname',
            hideObject: true,
            messageFormat: messageLine,
          })
        : undefined;
  }

  /** Whether progress is a bar (pretty lines on a terminal) rather than periodic log lines. */
  get showsBar(): boolean {
    return this.pretty !== undefined && this.stream.isTTY === true;
  }

  /** pino calls this with one JSON line (newline included) per log call. */
  write(line: string): void {
    if (!this.pretty) {
      this.json.write(line);
      return;
    }
    const entry = JSON.parse(line) as LogEntry;
    if (this.verbose || !isRoutine(entry)) this.print(this.pretty(entry));
  }

  private print(text: string): void {
    if (this.bars) this.bars.log(text);
    else this.stream.write(text);
  }

  /** A bar at the bottom of the terminal; log lines written meanwhile appear above it. */
  startBar(format: string, total: number, payload: Record<string, unknown>): BarHandle {
    const bars = new cliProgress.MultiBar(
      // linewrap true: the bar is cut at the terminal's width (a wrapped bar would leave a copy at every redraw),
      // while log lines keep wrapping. The cursor stays visible: Ctrl-C ends the process before any code could
      // show a hidden one again. forceRedraw: MultiBar clears the bar's line to print log lines there, but redraws
      // a bar only when its text changed (lib/generic-bar.js render), which would leave a blank line instead.
      { stream: this.stream, format, hideCursor: false, linewrap: true, clearOnComplete: false, forceRedraw: true },
      cliProgress.Presets.shades_classic,
    );
    const bar = bars.create(total, 0, payload);
    this.bars = bars;
    return {
      update: (value, next) => bar.update(value, next),
      stop: () => {
        // MultiBar.stop draws the bar once more but drops lines still waiting for a redraw; update() prints them.
        bars.update();
        bars.stop();
        if (this.bars === bars) this.bars = undefined;
      },
    };
  }
}

export const logWriter = new LogWriter();
