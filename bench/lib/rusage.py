"""Run one command and record its wall time and resource usage (user/system CPU, peak RSS).

Usage: rusage.py RESULT_JSON STDOUT_PATH CMD [ARGS...]
STDOUT_PATH '-' keeps the child's stdout. Node's child_process exposes no rusage for a child,
and /usr/bin/time is not on every machine, so the bench measures external tools through this.
"""
import json
import os
import sys
import time


def main() -> int:
    result_path, stdout_path, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        if stdout_path != "-":
            fd = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
        try:
            os.execvp(argv[0], argv)
        except OSError as err:
            print(f"rusage.py: cannot run {argv[0]}: {err}", file=sys.stderr)
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    with open(result_path, "w") as out:
        json.dump(
            {
                "exitCode": os.waitstatus_to_exitcode(status),
                "wallS": wall,
                "userS": usage.ru_utime,
                "sysS": usage.ru_stime,
                "maxRssKb": usage.ru_maxrss,
            },
            out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
