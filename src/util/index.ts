export { eachLimited } from './each-limited.js';
export { shellQuote } from './shell-quote.js';
