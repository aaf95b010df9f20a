"""Run directories with safe checkpoints: safetensors for tensors, JSON for everything else.

Training writes and resumes checkpoints; rendering reads only the EMA generator. This module
therefore imports nothing from ``train`` (and nothing from ``render``): it needs torch,
safetensors, numpy and :mod:`.model.config`.

Layout of a run directory ``RUN/``::

    RUN/config.json                  the Preset (model.config.to_dict) at the top level, plus
                                     "format", "package_version", "created" and "source"
    RUN/latest                       one line: the name of the newest complete checkpoint
    RUN/checkpoints/step-00000500/
        generator_ema.safetensors    one file per module: its state_dict (parameters and
        generator.safetensors        persistent buffers), each tensor in its own dtype
        discriminator.safetensors
        optimizers.safetensors       optimizer state tensors ("g_opt.state.3.exp_avg", ...)
        optimizers.json              the rest of the optimizer state (param_groups, python
                                     numbers), with references to the tensors above
        rng.safetensors              the torch generator state(s), uint8 tensors
        state.json                   step, kimg, rng (numpy, python), metrics, and the sha256 and
                                     size of every file above; written last

Writing is atomic. A checkpoint is written into ``checkpoints/.tmp-step-XXXXXXXX-<random>/``, every
file is fsynced, the directory is renamed to its final name with ``os.replace``, and only then is
``latest`` replaced (temporary file + ``os.replace``). ``latest`` is the commit point: a process
killed at any moment leaves ``latest`` naming either the previous checkpoint or the new one, both
complete. Readers ignore ``.tmp-*`` entries; the next save deletes them. Older checkpoints are
deleted (renamed to ``.tmp-*`` first, so a half-deleted directory is never mistaken for a
checkpoint) after the new one is in place; ``keep`` of them are retained.

One process writes to a run at a time: the trainer holds the run's :class:`.run_lock.RunLock`
while it trains. Nothing here uses pickle: tensors are read with
``safetensors.torch.load_file`` and everything else is JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from . import __version__
from .model.config import Preset, from_dict, to_dict

__all__ = [
    "FORMAT",
    "CheckpointError",
    "capture_rng",
    "checkpoint_name",
    "create_run",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_generator",
    "read_config",
    "restore_rng",
    "save_checkpoint",
]

FORMAT = "napari-scalespace/1"
"""The ``format`` of ``config.json`` and ``state.json`` this module writes and reads."""

CONFIG = "config.json"
STATE = "state.json"
LATEST = "latest"
CHECKPOINTS = "checkpoints"
OPTIMIZERS = "optimizers"
RNG_FILE = "rng.safetensors"

_META_KEYS = ("format", "package_version", "created", "source")
_STEP_DIR = re.compile(r"^step-(\d{8,})$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_RESERVED = {OPTIMIZERS, "rng", "state", "config"}
_TMP = ".tmp-"
_HASH_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A run directory or checkpoint that cannot be used; the message names the file."""


# --------------------------------------------------------------------------------------------
# small helpers: JSON, fsync, atomic files, hashing


def _json_value(value: Any, where: str) -> Any:
    """``value`` as strict JSON: numpy/torch scalars become numbers, paths strings, tuples lists.

    Non-finite floats become ``None`` (strict JSON has no NaN); anything else raises.
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str | int):
                raise CheckpointError(f"{where}: key {k!r} is not a string")
            out[str(k)] = _json_value(v, where)
        return out
    if isinstance(value, list | tuple):
        return [_json_value(v, where) for v in value]
    if isinstance(value, np.ndarray | torch.Tensor) and value.ndim > 0:
        return _json_value(value.tolist(), where)
    if isinstance(value, np.generic | np.ndarray | torch.Tensor):
        value = value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise CheckpointError(f"{where}: a {type(value).__name__} ({value!r}) cannot be stored in JSON")


def _dumps(data: Any) -> bytes:
    return (json.dumps(data, indent=1, allow_nan=False) + "\n").encode()


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (POSIX; a no-op where unsupported)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, all or nothing."""
    tmp = path.parent / f"{_TMP}{path.name}-{secrets.token_hex(4)}"
    try:
        _write_bytes(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _file_record(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return {"sha256": h.hexdigest(), "bytes": n}


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def _check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise ValueError(
            f"{kind} name must match {_NAME.pattern} and not be one of {sorted(_RESERVED)}, "
            f"got {name!r}"
        )
    return name


def _state_for_file(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous CPU tensors that share no storage: copy each one.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def _save_tensors(path: Path, tensors: Mapping[str, torch.Tensor], what: str) -> None:
    safetensors.torch.save_file(
        _state_for_file(tensors), str(path), metadata={"format": "pt", "content": what}
    )
    _fsync_file(path)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing file") from None
    except Exception as e:  # SafetensorError and friends: truncated or not a safetensors file
        msg = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({msg})") from None


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


# --------------------------------------------------------------------------------------------
# run directories and config.json


def create_run(
    run_dir: str | os.PathLike[str],
    preset: Preset,
    source: dict[str, Any] | None = None,
    exist_ok: bool = False,
) -> Path:
    """Create the run directory ``run_dir`` with its ``config.json``; returns its path.

    ``source`` is free JSON describing the data (image paths, value range, channels...); paths
    and numpy scalars are converted. If ``config.json`` exists: with ``exist_ok=False`` this is a
    ``CheckpointError``; with ``exist_ok=True`` the stored preset must equal ``preset`` (else a
    ``CheckpointError`` naming the differing fields) and the stored file is left as it is.
    """
    run = Path(run_dir)
    path = run / CONFIG
    if path.exists():
        if not exist_ok:
            raise CheckpointError(f"{path}: the run already exists (exist_ok=True reuses it)")
        stored, _ = read_config(run)
        diffs = _diff(to_dict(stored), to_dict(preset))
        if diffs:
            more = f"; and {len(diffs) - 6} more" if len(diffs) > 6 else ""
            shown = "; ".join(diffs[:6]) + more
            raise CheckpointError(f"{path}: stored preset differs from the requested one: {shown}")
        return run
    data = dict(to_dict(preset))
    clash = sorted(set(data) & set(_META_KEYS))
    if clash:  # cannot happen with the current Preset; guards a future field name
        raise CheckpointError(f"{path}: preset field(s) {clash} clash with config.json metadata")
    data.update(
        format=FORMAT,
        package_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source=_json_value(source or {}, f"{path}: source"),
    )
    run.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, _dumps(data))
    return run


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(f"{name} only in the {'requested' if k in b else 'stored'} preset")
            else:
                out += _diff(a[k], b[k], name)
        return out
    return [] if a == b else [f"{prefix}: stored {a!r}, requested {b!r}"]


def read_config(run_dir: str | os.PathLike[str]) -> tuple[Preset, dict[str, Any]]:
    """``(preset, source)`` from ``run_dir/config.json``; checks its ``format``."""
    path = Path(run_dir) / CONFIG
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise CheckpointError(f"{path}: unknown format {fmt!r} (expected {FORMAT!r})")
    source = data.get("source") or {}
    if not isinstance(source, dict):
        raise CheckpointError(f"{path}: 'source' must be a JSON object")
    fields = {k: v for k, v in data.items() if k not in _META_KEYS}
    train = fields.get("train")
    if isinstance(train, dict) and "positions" not in train:
        # written before positions existed: trained without them
        fields["train"] = {**train, "positions": "unknown"}
    try:
        preset = from_dict(Preset, fields)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid preset ({e})") from None
    return preset, source


# --------------------------------------------------------------------------------------------
# random number generators


def capture_rng(numpy_rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The state of the random number generators, for :func:`save_checkpoint`.

    ``{"torch": uint8 tensor (CPU generator), "python": random.getstate() as JSON lists,
    "numpy": numpy_rng.bit_generator.state as JSON}``; ``"numpy"`` only when a generator is
    given, and ``"torch_cuda"`` (one uint8 tensor per device) only when CUDA is initialised
    (restored only on a machine with as many devices).
    """
    version, internal, gauss = random.getstate()
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state().clone(),
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["torch_cuda"] = [s.clone() for s in torch.cuda.get_rng_state_all()]
    if numpy_rng is not None:
        rng["numpy"] = _encode_np(numpy_rng.bit_generator.state)
    return rng


def restore_rng(
    state: Mapping[str, Any], numpy_rng: np.random.Generator | None = None
) -> np.random.Generator | None:
    """Restore the generators captured by :func:`capture_rng`.

    ``state`` is a ``capture_rng()`` dict or the dict :func:`load_checkpoint` returns (its
    ``"rng"`` entry is used). The numpy state is put into ``numpy_rng`` if given, else into a new
    ``np.random.Generator`` of the stored bit generator; that generator is returned (``None``
    when no numpy state was stored).
    """
    rng = state["rng"] if "rng" in state and "torch" not in state else state
    if "torch" in rng:
        t = rng["torch"]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError("rng: 'torch' is not a tensor (load it with load_checkpoint)")
        torch.set_rng_state(t.to(dtype=torch.uint8, device="cpu"))
    if rng.get("torch_cuda") and torch.cuda.is_available():
        states = list(rng["torch_cuda"])
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in states])
        else:
            warnings.warn(f"rng: {len(states)} CUDA generator states stored but "
                          f"{torch.cuda.device_count()} devices here; CUDA RNG not restored",
                          stacklevel=2)
    if "python" in rng:
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))
    if rng.get("numpy") is None:
        return numpy_rng
    np_state = _decode_np(rng["numpy"])
    if numpy_rng is None:
        bit_generator = getattr(np.random, np_state["bit_generator"])()
        numpy_rng = np.random.Generator(bit_generator)
    numpy_rng.bit_generator.state = np_state
    return numpy_rng


def _encode_np(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _encode_np(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_encode_np(v) for v in value]
    return value


def _decode_np(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype"}:
            return np.asarray(value["ndarray"], dtype=value["dtype"])
        return {k: _decode_np(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------
# optimizers <-> (tensors, JSON)


def _encode_opt_value(value: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Tagged JSON: every JSON object is a tag, so plain lists and scalars stay as they are."""
    if isinstance(value, torch.Tensor):
        if name in tensors:
            raise ValueError(f"optimizer tensor name {name!r} is not unique")
        tensors[name] = value
        return {"tensor": name}
    if isinstance(value, tuple):
        items = [_encode_opt_value(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
        return {"tuple": items}
    if isinstance(value, list):
        return [_encode_opt_value(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {"dict": {str(k): _encode_opt_value(v, f"{name}.{k}", tensors)
                         for k, v in value.items()}}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    raise TypeError(f"optimizer state {name}: cannot store a {type(value).__name__}")


def _decode_opt_value(value: Any, tensors: Mapping[str, torch.Tensor], where: str) -> Any:
    if isinstance(value, list):
        return [_decode_opt_value(v, tensors, where) for v in value]
    if not isinstance(value, dict):
        return value
    if "tensor" in value:
        name = value["tensor"]
        if name not in tensors:
            raise CheckpointError(f"{where}: tensor {name!r} is missing")
        return tensors[name]
    if "tuple" in value:
        return tuple(_decode_opt_value(v, tensors, where) for v in value["tuple"])
    if "dict" in value:
        return {k: _decode_opt_value(v, tensors, where) for k, v in value["dict"].items()}
    if "float" in value:
        return float(value["float"])
    raise CheckpointError(f"{where}: unknown value tag {sorted(value)}")


def _encode_optimizer(name: str, opt: torch.optim.Optimizer,
                      tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    sd = opt.state_dict()
    state = {
        str(idx): {k: _encode_opt_value(v, f"{name}.state.{idx}.{k}", tensors)
                   for k, v in entry.items()}
        for idx, entry in sd["state"].items()
    }
    groups = [
        {k: _encode_opt_value(v, f"{name}.param_groups.{i}.{k}", tensors) for k, v in g.items()}
        for i, g in enumerate(sd["param_groups"])
    ]
    return {"type": type(opt).__name__, "state": state, "param_groups": groups}


def _decode_optimizer(data: Any, tensors: Mapping[str, torch.Tensor], where: str
                      ) -> tuple[str, dict[str, Any]]:
    try:
        state = {int(idx): {k: _decode_opt_value(v, tensors, where) for k, v in entry.items()}
                 for idx, entry in data["state"].items()}
        groups = [{k: _decode_opt_value(v, tensors, where) for k, v in g.items()}
                  for g in data["param_groups"]]
        return str(data["type"]), {"state": state, "param_groups": groups}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{where}: malformed optimizer state ({e!r})") from None


# --------------------------------------------------------------------------------------------
# checkpoints


def checkpoint_name(step: int) -> str:
    """The directory name of the checkpoint of ``step``: ``step-00000500``."""
    return f"step-{step:08d}"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The complete checkpoint directories of a run (those with a ``state.json``), by step.

    ``.tmp-*`` directories (unfinished saves, deletions in progress) are never listed.
    """
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / STATE).is_file():
            found.append((int(m.group(1)), d))
    return [d for _, d in sorted(found)]


def _read_latest(run: Path) -> str | None:
    path = run / LATEST
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot be read ({e})") from None
    if not _STEP_DIR.match(name):
        raise CheckpointError(f"{path}: {name[:80]!r} is not a checkpoint directory name")
    return name


def recorded_file(path: str, run_dir: str | os.PathLike[str] | None = None) -> str | None:
    """A file path a run recorded (its image, a collection's image) as a file here (or a
    folder: an OME-Zarr store; a URL is returned as recorded): as given (absolute, or relative
    to the working directory), then relative to the run folder; None when neither exists (a
    run trained from a napari layer, or moved data)."""
    if not path:
        return None
    if "://" in path:  # a URL (an OME-Zarr read through fsspec): as recorded
        return path
    candidates = [Path(path)] + ([Path(run_dir) / path] if run_dir is not None else [])
    return next((str(c) for c in candidates if c.is_file() or c.is_dir()), None)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint of the run (the one ``latest`` names), or ``None``.

    ``None`` when no checkpoint was ever completed; a ``CheckpointError`` when ``latest`` is
    malformed or names a directory that does not exist (or holds no ``state.json``).
    """
    run = Path(run_dir)
    name = _read_latest(run)
    if name is None:
        return None
    ckpt = run / CHECKPOINTS / name
    if not (ckpt / STATE).is_file():
        what = "has no state.json" if ckpt.is_dir() else "is missing"
        raise CheckpointError(f"{run / LATEST}: names {name}, which {what}")
    return ckpt


def _clean_stale(run: Path) -> None:
    for parent in (run, run / CHECKPOINTS):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            if entry.name.startswith(_TMP):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        entry.unlink()


def _discard(ckpt: Path) -> None:
    """Delete a checkpoint directory, renaming it to ``.tmp-*`` first (never half a checkpoint)."""
    trash = ckpt.parent / f"{_TMP}old-{ckpt.name}-{secrets.token_hex(4)}"
    os.replace(ckpt, trash)
    _fsync_dir(ckpt.parent)
    shutil.rmtree(trash, ignore_errors=True)


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    kimg: float,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    rng: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Save a checkpoint atomically into ``run_dir/checkpoints/step-XXXXXXXX``; returns its path.

    ``modules`` maps a name to a module: ``{"generator_ema": G_ema, "generator": G,
    "discriminator": D}`` gives ``generator_ema.safetensors``... (state_dict: parameters and
    persistent buffers, each in its own dtype). ``optimizers`` maps a name to an optimizer
    (``{"g_opt": ..., "d_opt": ...}``). ``rng`` is a :func:`capture_rng` dict (default: capture
    the torch and python generators now). ``metrics`` is free JSON (non-finite floats become
    null). After the new checkpoint is in place and ``latest`` names it, checkpoints beyond the
    ``keep`` of highest step (always counting the new one) are deleted. A checkpoint already
    saved at the same step is replaced.
    """
    run = Path(run_dir)
    if not (run / CONFIG).is_file():
        raise CheckpointError(f"{run / CONFIG}: missing file (create the run with create_run)")
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    step = int(step)
    kimg = float(kimg)
    if not math.isfinite(kimg):
        raise ValueError(f"kimg must be finite, got {kimg}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be an int >= 1, got {keep!r}")
    for name in modules:
        _check_name("module", name)
    for name in optimizers or {}:
        _check_name("optimizer", name)
    rng = capture_rng() if rng is None else rng
    unknown = sorted(set(rng) - {"torch", "torch_cuda", "numpy", "python"})
    if unknown:
        raise ValueError(f"rng: unknown key(s) {unknown}")

    root = run / CHECKPOINTS
    root.mkdir(exist_ok=True)
    _clean_stale(run)
    name = checkpoint_name(step)
    tmp = root / f"{_TMP}{name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        files: list[str] = []
        for mod_name, module in modules.items():
            fname = f"{mod_name}.safetensors"
            _save_tensors(tmp / fname, module.state_dict(), mod_name)
            files.append(fname)

        if optimizers:
            tensors: dict[str, torch.Tensor] = {}
            meta = {n: _encode_optimizer(n, o, tensors) for n, o in optimizers.items()}
            _save_tensors(tmp / f"{OPTIMIZERS}.safetensors", tensors, OPTIMIZERS)
            _write_bytes(tmp / f"{OPTIMIZERS}.json", _dumps({"format": FORMAT, **meta}))
            files += [f"{OPTIMIZERS}.safetensors", f"{OPTIMIZERS}.json"]

        rng_json: dict[str, Any] = {}
        rng_tensors: dict[str, torch.Tensor] = {}
        if rng.get("torch") is not None:
            rng_tensors["torch"] = torch.as_tensor(rng["torch"], dtype=torch.uint8)
            rng_json["torch"] = f"{RNG_FILE}:torch"
        if rng.get("torch_cuda"):
            names = [f"torch_cuda.{i}" for i in range(len(rng["torch_cuda"]))]
            rng_tensors.update(zip(names, rng["torch_cuda"], strict=True))
            rng_json["torch_cuda"] = [f"{RNG_FILE}:{n}" for n in names]
        if rng_tensors:
            _save_tensors(tmp / RNG_FILE, rng_tensors, "rng")
            files.append(RNG_FILE)
        if rng.get("numpy") is not None:
            rng_json["numpy"] = _json_value(_encode_np(rng["numpy"]), "rng.numpy")
        if rng.get("python") is not None:
            rng_json["python"] = _json_value(rng["python"], "rng.python")

        state = {
            "format": FORMAT,
            "step": step,
            "kimg": kimg,
            "rng": rng_json,
            "metrics": _json_value(metrics or {}, "metrics"),
            "files": {f: _file_record(tmp / f) for f in files},
        }
        _write_bytes(tmp / STATE, _dumps(state))  # last: a step-* directory with it is complete
        _fsync_dir(tmp)

        final = root / name
        if final.exists():
            # Re-saving a step (e.g. after resuming from an older checkpoint). Point `latest`
            # elsewhere first so that it never names a directory that is briefly missing.
            if _read_latest_quiet(run) == name:
                others = [d for d in list_checkpoints(run) if d.name != name]
                if others:
                    _atomic_write(run / LATEST, f"{others[-1].name}\n".encode())
                else:
                    with contextlib.suppress(OSError):
                        (run / LATEST).unlink()
            _discard(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)
    _atomic_write(run / LATEST, f"{name}\n".encode())  # the commit point

    others = [d for d in list_checkpoints(run) if d.name != name]
    for old in others[: max(0, len(others) - (keep - 1))]:
        _discard(old)
    return final


def _read_latest_quiet(run: Path) -> str | None:
    try:
        return _read_latest(run)
    except CheckpointError:
        return None


def _resolve_checkpoint(path: Path) -> Path:
    if (path / STATE).is_file():
        return path
    if (path / CONFIG).is_file() or (path / LATEST).exists() or (path / CHECKPOINTS).is_dir():
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise CheckpointError(f"{path / LATEST}: missing file (the run has no checkpoint yet)")
        return ckpt
    if _STEP_DIR.match(path.name) and path.is_dir():
        raise CheckpointError(f"{path / STATE}: missing file (incomplete checkpoint)")
    raise CheckpointError(f"{path}: neither a run directory nor a checkpoint")


def read_state(ckpt: Path) -> dict[str, Any]:
    """A checkpoint folder's ``state.json``, checked (step, kimg, files with their hashes...)."""
    path = ckpt / STATE
    state = _read_json(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(state).__name__}")
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown format {state.get('format')!r} "
                              f"(expected {FORMAT!r})")
    for key, kind, label in (("step", int, "an integer"), ("kimg", int | float, "a number"),
                             ("files", dict, "an object"), ("rng", dict, "an object"),
                             ("metrics", dict, "an object")):
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(f"{path}: {key!r} is missing or not {label}")
    for fname, rec in state["files"].items():
        if ("/" in fname or "\\" in fname or fname.startswith(".") or not isinstance(rec, dict)
                or not isinstance(rec.get("sha256"), str) or not isinstance(rec.get("bytes"), int)):
            raise CheckpointError(f"{path}: malformed entry for {fname!r} in 'files'")
    return state


def _verify(ckpt: Path, state: Mapping[str, Any], fname: str, hash: bool = True) -> Path:
    """Check one file against its record in state.json (size, then sha256); returns its path.

    ``hash=False`` only checks that the file is listed (it was verified already).
    """
    path = ckpt / fname
    rec = state["files"].get(fname)
    if rec is None:
        have = sorted(state["files"])
        raise CheckpointError(f"{path}: not part of this checkpoint (state.json lists {have})")
    if not hash:
        return path
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing file") from None
    if size != rec["bytes"]:
        raise CheckpointError(f"{path}: {size} bytes but state.json records {rec['bytes']} "
                              f"(truncated or modified file)")
    if _file_record(path)["sha256"] != rec["sha256"]:
        raise CheckpointError(f"{path}: sha256 mismatch with state.json (corrupt or modified file)")
    return path


def _check_module(path: Path, module: nn.Module, tensors: Mapping[str, torch.Tensor],
                  strict: bool) -> None:
    expected = module.state_dict()
    params = {n for n, _ in module.named_parameters(remove_duplicate=False)}
    problems: list[str] = []
    mismatched = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    for k in mismatched[:3]:
        kind = "parameter" if k in params else "buffer"
        problems.append(f"{kind} {k} has shape {_shape(tensors[k])} in the file but "
                        f"{_shape(expected[k])} in the model")
    if len(mismatched) > 3:
        problems.append(f"and {len(mismatched) - 3} more with other shapes")
    if strict:
        for label, keys in (("missing from the file", [k for k in expected if k not in tensors]),
                            ("unexpected in the file",
                             sorted(k for k in tensors if k not in expected))):
            if keys:
                more = f", ... ({len(keys)} in all)" if len(keys) > 5 else ""
                problems.append(f"{label}: {', '.join(keys[:5])}{more}")
    if problems:
        raise CheckpointError(f"{path}: " + "; ".join(problems))


def load_checkpoint(
    run_dir_or_ckpt: str | os.PathLike[str],
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint (a run directory means its ``latest``) into modules and optimizers.

    Every file listed in ``state.json`` is checked (size and sha256) and every requested file is
    read and matched against its module or optimizer before anything is modified, so a failure
    leaves the modules as they were. ``strict=False`` allows missing and unexpected keys (never
    different shapes). Returns the ``state.json`` dict, with ``state["rng"]["torch"]`` (and
    ``"torch_cuda"``) as uint8 tensors, ready for :func:`restore_rng`.
    """
    ckpt = _resolve_checkpoint(Path(run_dir_or_ckpt))
    state = read_state(ckpt)
    for fname in state["files"]:
        _verify(ckpt, state, fname)

    def listed(fname: str) -> Path:
        return _verify(ckpt, state, fname, hash=False)

    loaded: list[tuple[nn.Module, dict[str, torch.Tensor]]] = []
    for name, module in modules.items():
        path = listed(f"{_check_name('module', name)}.safetensors")
        tensors = _load_tensors(path)
        _check_module(path, module, tensors, strict)
        loaded.append((module, tensors))

    opt_states: list[tuple[str, torch.optim.Optimizer, dict[str, Any]]] = []
    if optimizers:
        t_path = listed(f"{OPTIMIZERS}.safetensors")
        j_path = listed(f"{OPTIMIZERS}.json")
        tensors = _load_tensors(t_path)
        meta = _read_json(j_path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{j_path}: unknown format")
        for name, opt in optimizers.items():
            if name not in meta:
                have = sorted(k for k in meta if k != "format")
                raise CheckpointError(f"{j_path}: no optimizer {name!r} (it has {have})")
            kind, sd = _decode_optimizer(meta[name], tensors, str(j_path))
            if kind != type(opt).__name__:
                raise CheckpointError(f"{j_path}: {name} is a {kind} in the file but a "
                                      f"{type(opt).__name__} here")
            _check_optimizer(j_path, name, opt, sd)
            opt_states.append((name, opt, sd))

    rng = dict(state["rng"])
    refs = {k: rng[k] for k in ("torch", "torch_cuda") if k in rng}
    if refs:
        rng_tensors = _load_tensors(listed(RNG_FILE))
        for key, ref in refs.items():
            names = [r.split(":", 1)[-1] for r in (ref if isinstance(ref, list) else [ref])]
            missing = [n for n in names if n not in rng_tensors]
            if missing:
                raise CheckpointError(f"{ckpt / RNG_FILE}: missing tensor(s) {missing}")
            values = [rng_tensors[n].to(torch.uint8) for n in names]
            rng[key] = values if isinstance(ref, list) else values[0]
    state["rng"] = rng

    for module, tensors in loaded:
        module.load_state_dict(tensors, strict=strict)
    for name, opt, sd in opt_states:
        try:
            opt.load_state_dict(sd)
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt / (OPTIMIZERS + '.json')}: {name}: {e}") from None
    return state


def _check_optimizer(path: Path, name: str, opt: torch.optim.Optimizer,
                     sd: Mapping[str, Any]) -> None:
    groups = opt.param_groups
    saved = sd["param_groups"]
    sizes = [len(g["params"]) for g in groups]
    saved_sizes = [len(g.get("params", [])) for g in saved]
    if sizes != saved_sizes:
        raise CheckpointError(f"{path}: {name} has parameter groups of sizes {saved_sizes} in "
                              f"the file but {sizes} here")
    params = [p for g in groups for p in g["params"]]
    index = {i: p for g, sg in zip(groups, saved, strict=True)
             for i, p in zip(sg["params"], g["params"], strict=True)}
    for idx, entry in sd["state"].items():
        p = index.get(idx)
        if p is None:
            raise CheckpointError(f"{path}: {name} has state for parameter {idx}, which does "
                                  f"not exist ({len(params)} parameters)")
        for key, v in entry.items():
            if isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape != p.shape:
                raise CheckpointError(f"{path}: {name}.state.{idx}.{key} has shape "
                                      f"{_shape(v)} in the file but the parameter has "
                                      f"{_shape(p)}")


def load_generator(
    run_dir: str | os.PathLike[str],
    build: Callable[[Preset], nn.Module],
    which: str = "generator_ema",
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, Preset, dict[str, Any]]:
    """For rendering: ``(module, preset, state)`` from a run's latest checkpoint.

    ``run_dir`` is a run directory (its ``latest`` checkpoint is used) or a checkpoint directory
    inside one. Reads ``config.json``, builds the module with ``build(preset)``, verifies and
    loads only ``<which>.safetensors`` (strictly), and returns the module on ``device`` in eval
    mode without gradients. ``state`` is the ``state.json`` dict as stored (rng not loaded).
    """
    path = Path(run_dir)
    if (path / STATE).is_file() and not (path / CONFIG).is_file():
        ckpt, run = path, path.parent.parent
    else:
        run = path
        ckpt = _resolve_checkpoint(path)
    preset, _ = read_config(run)
    state = read_state(ckpt)
    file = _verify(ckpt, state, f"{_check_name('module', which)}.safetensors")
    tensors = _load_tensors(file)
    module = build(preset)
    _check_module(file, module, tensors, strict=True)
    module.load_state_dict(tensors, strict=True)
    module.to(device).eval().requires_grad_(False)
    return module, preset, state
