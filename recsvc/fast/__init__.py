"""Compiled answers (`_kernel.pyx`): the chatbot's common requests, in C, to wire bytes;
and their per-call path (`_rpc.pyx`, `CompiledRPC`), which the server puts in front of
the Python one.

`kernel_for(model, config)` builds one per model load. Without the compiled modules
(a checkout that was never installed with `pip install -e .`, or one built before
`_rpc` existed) or with `compiled_answers = false`, there is none and the Python path
answers everything.
"""
from __future__ import annotations

import logging

log = logging.getLogger("recsvc.fast")

try:  # both or neither: a kernel is only ever called through CompiledRPC
    from recsvc.fast._kernel import Kernel, id_slots
    from recsvc.fast._rpc import CompiledRPC
except ImportError as e:  # not built: every request takes the Python path
    Kernel = CompiledRPC = id_slots = None  # type: ignore[assignment,misc]
    UNAVAILABLE = f"recsvc.fast is not built ({e}); run `pip install -e .` to build it"
else:
    UNAVAILABLE = ""


def kernel_for(model, config) -> "Kernel | None":
    if not config.compiled_answers:
        return None
    if Kernel is None:
        log.warning("%s; answering in Python (slower)", UNAVAILABLE)
        return None
    return Kernel(model, config)
