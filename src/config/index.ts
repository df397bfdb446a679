export { UsageError, InputError, TaskFailure, exitCodeOf, messageOf } from './errors.js';
export { parseWith, parseJson } from './validate.js';
export { programVersion } from './version.js';
