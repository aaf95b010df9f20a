"""Test-session set-up.

Triton's bundled LLVM and Mesa's llvmpipe (which renders napari under Xvfb) crash a process
when triton is imported *after* a canvas has been drawn, and torch imports triton by itself
(every ``torch.optim`` optimizer imports ``torch._dynamo``). Loaded in the other order they
coexist, so triton is imported here, before any GUI test runs, whatever the test order.
(Inside napari the plugin blocks triton instead: ``_widgets/_llvm_guard.py``.)

With ``CI`` set (as CI does), hypothesis uses a derandomised profile.

Triton kernels run through triton's CPU interpreter (``TRITON_INTERPRET=1``).

napari's settings are read from and saved to a throw-away file (``NAPARI_CONFIG``), so tests
neither depend on nor change the user's preferences (e.g. async slicing).
"""

import importlib.util
import os
import tempfile

import pytest

os.environ["NAPARI_CONFIG"] = os.path.join(tempfile.mkdtemp(prefix="napari_cfg_"),
                                           "settings.yaml")

from hypothesis import settings

# CI runs the property tests with a fixed derandomised search (reproducible results);
# locally hypothesis keeps exploring new examples on every run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The Triton kernels run on CPU tensors through triton's interpreter (tests/test_ops_triton.py);
# it must be chosen before triton is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401


# Known bug, under investigation (2026-12-07): after the whole suite has run, the interpreter's
# own finalization aborts with "Fatal Python error: none_dealloc" (gdb: func_dealloc ->
# Py_DECREF(None) while finalize_modules clears module dicts): some C extension has released
# more references to None than it took. It does not happen when any single test module runs
# alone, and every test has passed by then. Until it is found, the session ends with pytest's
# own exit status, without the interpreter's finalization (last, after every other plugin,
# pytest-xvfb's stop of Xvfb included); a failing test still fails the run.
_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["code"])
