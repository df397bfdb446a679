export { createLogger, rootLogger, type Logger } from './logger.js';
export { Progress, type ProgressCounts } from './progress.js';
export {
  isLogFormat,
  isRoutine,
  LOG_FORMATS,
  logWriter,
  LogWriter,
  type LogEntry,
  type LogFormat,
  type LogSettings,
} from './terminal.js';
export { programVersion } from './version.js';
