// Imported first by the stage tests: the program's logger reads LOG_LEVEL once, when its module loads, and the
// in-process CLI runs would otherwise fill the test output with info lines.
process.env.LOG_LEVEL ??= 'silent';
