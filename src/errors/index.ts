export { UsageError, InputError, TaskFailure, exitCodeOf, messageOf } from './errors.js';
export { parseWith, parseJson } from './validate.js';
