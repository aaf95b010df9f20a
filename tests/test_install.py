"""The installation a fresh clone gets: coupled packages that import together, and a constraints
file that pins what this environment (the one the suite runs in) holds."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(extra: str | None = None) -> list[Requirement]:
    reqs = [Requirement(r) for r in md.requires("napari-scalespace") or []]
    env = {"extra": extra or ""}
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


def test_dask_and_distributed_are_one_release_and_import():
    """distributed is released in lockstep with dask; a mismatched pair cannot import."""
    import dask
    import distributed

    assert distributed.__version__ == dask.__version__
    from distributed import Client, LocalCluster  # noqa: F401  (the names render/cluster uses)


def test_dask_requirement_carries_the_distributed_extra():
    (dask_req,) = [r for r in _requirements() if _norm(r.name) == "dask"]
    assert "distributed" in dask_req.extras
    assert dask_req.specifier, "dask needs a lower bound"


def test_every_requirement_is_pinned_to_the_installed_version():
    """constraints.txt pins each package the project and its test extra need, at the version
    installed here: a fresh machine resolves what this suite passed with (refresh the file with
    scripts/freeze-constraints.sh after an upgrade)."""
    pins = _constraints()
    for req in _requirements("testing"):
        name = _norm(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt"
        installed = md.version(req.name)
        assert installed.split("+")[0] == pins[name], (
            f"{req.name}: installed {installed}, constraints.txt {pins[name]}")
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{req.name}: the pin {pins[name]} is outside pyproject's range {req.specifier}")
