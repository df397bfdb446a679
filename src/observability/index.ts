export { createLogger, rootLogger, type Logger } from './logger.js';
export { Progress, type ProgressCounts } from './progress.js';
export { programVersion } from './version.js';
