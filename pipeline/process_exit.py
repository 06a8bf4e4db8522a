"""The end of a process that loaded MLflow, pandas, SQLAlchemy and matplotlib.

Python's shutdown runs the cyclic garbage collector over every object left (module dicts,
MLflow's protobuf descriptors, SQLAlchemy's registries): about 1 CPU second per process on this
2-core machine (measured: 4.0 s of CPU for a script whose work ended at 2.9 s; 3.0 s with the
objects frozen), paid by every command after its last output and by every spawned worker
before its parent can join it. Nothing it frees matters to a process that is ending: the OS
takes the memory back, and every file and store this code writes is closed by a `with` block
or committed before this point (open files still flush when their last reference goes, which
freezing does not stop; atexit handlers and weakref finalizers still run). So the objects
are frozen (`gc.freeze`: moved out of the collector's reach) when the process's work is done.
"""

from __future__ import annotations

import gc


def skip_final_gc() -> None:
    """Call when this process has nothing left to do but exit (never in a library call: the
    caller's process would lose its cyclic garbage collection)."""
    gc.disable()
    gc.freeze()
