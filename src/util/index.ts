export { eachLimited } from './each-limited.js';
