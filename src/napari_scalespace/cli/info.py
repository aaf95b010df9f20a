"""``napari-scalespace info``: versions, threads, accelerators, the ops in use."""

from __future__ import annotations

import argparse
import platform
import signal
import subprocess
import sys

from napari_scalespace import __version__


def _add_info(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="show versions, threads, accelerators and the ops implementation in use",
        description="Show the package, Python and torch versions, torch's thread counts, CUDA "
        "and Triton availability, and which ops implementation impl='auto' picks.",
    )
    p.set_defaults(func=cmd_info)


def _triton_status() -> str:
    """Whether ``import triton`` works, tried in a fresh interpreter.

    Not in this process: triton's bundled LLVM segfaults when imported into a process that
    already holds Mesa's libLLVM (any process that has drawn an OpenGL canvas with llvmpipe,
    e.g. napari under Xvfb); a child process keeps ``info`` safe to call from anywhere.
    """
    if "triton" in sys.modules:
        return f"imported ({getattr(sys.modules['triton'], '__version__', 'unknown version')})"
    code = "import triton; print(getattr(triton, '__version__', 'unknown version'))"
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return "import timed out (120 s)"
    if res.returncode == 0:
        return f"importable ({res.stdout.strip()})"
    if res.returncode < 0:
        try:
            name = signal.Signals(-res.returncode).name
        except ValueError:
            name = f"signal {-res.returncode}"
        return f"import crashed ({name})"
    last = (res.stderr.strip().splitlines() or ["no message"])[-1]
    return f"not importable ({last})"


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from napari_scalespace.ops.dispatch import TRITON_OPS, resolve

    cuda = torch.cuda.is_available()
    if cuda:
        n, name = torch.cuda.device_count(), torch.cuda.get_device_name(0)
        cuda_line = f"cuda available: yes ({n} device(s), first: {name})"
    else:
        cuda_line = "cuda available: no"
    lines = [
        f"napari-scalespace {__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"torch {torch.__version__}",
        f"torch threads: {torch.get_num_threads()} intra-op, "
        f"{torch.get_num_interop_threads()} inter-op",
        cuda_line,
        f"triton: {_triton_status()}",
        f"ops impl='auto' on cpu: {resolve('auto', torch.zeros(1))}",
    ]
    if cuda:
        t = torch.zeros(1, device="cuda")
        lines.append("ops impl='auto' on cuda: " + ", ".join(
            f"{op} {resolve('auto', t, op)}" for op in sorted(TRITON_OPS)))
    print("\n".join(lines))
    return 0
