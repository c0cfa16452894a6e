"""Exit codes of the ``tabtune`` command."""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_TERMINATED",
]

#: Success.
EXIT_OK = 0
#: An internal error (a bug, or an environment problem the message names).
EXIT_INTERNAL = 1
#: Bad input or configuration; the message says what and where.
EXIT_BAD_INPUT = 2
#: A refresh in which some brands failed while the rest completed (``tabtune report``: the
#: night shown has failed brands, or did not finish).
EXIT_PARTIAL = 3
#: Interrupted with Ctrl-C.
EXIT_INTERRUPTED = 130
#: The reader of the output went away (``tabtune models list | head``), as a shell reports a
#: command ended by SIGPIPE.
EXIT_BROKEN_PIPE = 141
#: Ended by SIGTERM (what Airflow's on_kill and ``kill`` send), as a shell reports it: the
#: command unwinds as after Ctrl-C (locks released, workers stopped); a rerun resumes.
EXIT_TERMINATED = 143
#: (SIGHUP, a closed terminal or ssh session, ends a command the same way, with 129.)
