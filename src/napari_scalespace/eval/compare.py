"""Evaluation runs with their outputs, for the CLI (``eval``, ``compare``) and the widget.

- :func:`eval_steps`: evaluate a run against an image (:mod:`.evaluate`) and write the JSON
  report, the metric plots and the contact sheet.
- :func:`collection_eval_steps`: evaluate a run trained on a collection against the patches of
  its images (:mod:`.collection`): JSON report, contact sheet.
- :func:`compare_steps`: first write the learned and the ground-truth OME-Zarr pyramids on one
  grid (to open side by side in napari), then :func:`eval_steps` into the same folder.

Both are generators (progress events, then the result) so that callers show progress and can
stop them between units of work by closing them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..render.export import open_pyramid

__all__ = [
    "CONTACT",
    "LEARNED",
    "METRICS",
    "PLOT",
    "TRUTH",
    "collection_eval_steps",
    "compare_steps",
    "comparison_sheet",
    "eval_steps",
    "run_collection",
    "run_image",
]

LEARNED, TRUTH = "learned.zarr", "truth.zarr"
METRICS, PLOT, CONTACT = "metrics.json", "metrics.png", "contact_sheet.png"


def run_image(run_dir: str | Path) -> str | None:
    """The image a run was trained on, if its config names a file that exists (a relative
    name is looked up from the working directory, then from the run directory). None for a
    run on a collection: no one image is its truth."""
    from ..checkpoint import read_config, recorded_file

    info = read_config(run_dir)[1]
    images = info.get("images", [])
    if not images or info.get("collection"):
        return None
    return recorded_file(images[0], run_dir)


def run_collection(run_dir: str | Path):
    """The :class:`.Collection` a run was trained on (reopened from the paths and pixel sizes
    it recorded), or None for a run on plain images."""
    from ..checkpoint import read_config, recorded_file
    from ..data.collection import open_collection
    from ..data.pixel_size import PixelSize

    entries = read_config(run_dir)[1].get("collection")
    if not entries:
        return None
    paths = [recorded_file(str(e["image"] or ""), run_dir) for e in entries]
    missing = [e.get("name") or str(e["image"]) for e, p in zip(entries, paths, strict=True)
               if p is None]
    if missing:
        raise ValueError(f"{run_dir}: the collection's images {', '.join(missing)} are not "
                         f"files here (trained from napari layers, or moved)")
    return open_collection([(p, PixelSize(e["value"], e["unit"]))
                            for e, p in zip(entries, paths, strict=True)])


def collection_eval_steps(run_dir: str | Path, collection=None,
                          json_path: str | Path | None = None,
                          plots_dir: str | Path | None = None, views: int = 64,
                          octaves: int | None = None, seed: int | None = None,
                          device: str = "auto", centre: tuple[float, float] | None = None,
                          renderer=None):
    """Evaluate ``run_dir`` against ``collection`` (default: the one it was trained on).
    Yields ``("eval", done, total)``, then ``("report", CollectionReport, {name: path})``:
    ``json_path``, and ``contact_sheet.png`` in ``plots_dir``."""
    from ..render.renderer import Renderer
    from .collection import evaluate_collection_steps, save_collection_sheet

    if collection is None:
        collection = run_collection(run_dir)
        if collection is None:
            raise ValueError(f"{run_dir}: not trained on a collection")
    if renderer is None:
        renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=0)
    report = None
    for event in evaluate_collection_steps(renderer, collection, views=views, octaves=octaves,
                                           run=str(run_dir)):
        if event[0] == "report":
            report = event[1]
        else:
            yield event
    files: dict[str, Path] = {}
    if json_path is not None:
        files["json"] = report.save(json_path)
    if plots_dir is not None:
        files["contact_sheet"] = save_collection_sheet(renderer, collection,
                                                       Path(plots_dir) / CONTACT, centre,
                                                       octaves)
    yield "report", report, files


def eval_steps(run_dir: str | Path, image: object, json_path: str | Path | None = None,
               plots_dir: str | Path | None = None, views: int = 64,
               octaves: int | None = None, seed: int | None = None, device: str = "auto",
               inception: str | Path | None = None,
               centre: tuple[float, float] | None = None, renderer=None, client=None):
    """Evaluate ``run_dir`` (scale space ``seed``) against ``image``; with a
    ``distributed.Client``, one octave per task on its workers (the same report).

    Yields ``("eval", done, total)``, then ``("report", EvalReport, {name: path})`` with the
    files written: ``json_path`` (the report), and in ``plots_dir`` ``metrics.png`` and
    ``contact_sheet.png`` (learned | truth | bicubic at every zoom around ``centre``, default
    the busiest of 64 random centres at the finest zoom the data covers).
    """
    from ..data import open_source
    from ..render.renderer import Renderer
    from .evaluate import distributed_evaluate_steps, evaluate_steps
    from .features import FeatureNet
    from .plots import contact_sheet, plot_metrics, save_contact_sheet
    from .views import BicubicViews, LearnedViews, TruthViews

    if renderer is None:
        renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=0)
    source = open_source(image)
    src = str(image) if isinstance(image, str | Path) else source.name
    report = None
    if client is not None:
        if not isinstance(image, str | Path):
            raise ValueError("a cluster evaluation needs the ground truth as a file path")
        steps = distributed_evaluate_steps(client, run_dir, image, views=views,
                                           octaves=octaves, scale_space=renderer.seed,
                                           device=device, inception=inception)
    else:
        net = None if inception is None else FeatureNet(inception)
        steps = evaluate_steps(renderer, source, views=views, octaves=octaves,
                               feature_net=net, run=str(run_dir), truth=src)
    for event in steps:
        if event[0] == "report":
            report = event[1]
        else:
            yield event
    _describe_run(report, run_dir, renderer, source)
    files: dict[str, Path] = {}
    if json_path is not None:
        files["json"] = report.save(json_path)
    if plots_dir is not None:
        plots = Path(plots_dir)
        files["plot"] = plot_metrics(report, plots / PLOT)
        R = renderer.tile_size
        truth = TruthViews(source, R)
        n_oct = renderer.octaves if octaves is None else octaves
        if centre is None:
            centre = default_centre(truth, n_oct)
        sheet = contact_sheet({"learned": LearnedViews(renderer), "truth": truth,
                               "bicubic": BicubicViews(source, R)}, centre, n_oct)
        files["contact_sheet"] = save_contact_sheet(sheet, plots / CONTACT, centre)
    yield "report", report, files


def default_centre(truth, octaves: int) -> tuple[float, float]:
    """The contact sheets' centre: the busiest region at the finest zoom the data covers."""
    from ..data.dataset import max_octaves
    from .plots import busiest_centre

    src = truth.source
    return busiest_centre(truth, min(octaves, max_octaves(src.height, src.width,
                                                          truth.resolution)))


def comparison_sheet(runs: list, labels: list[str], image: object, path: str | Path,
                     octaves: int | None = None, centre: tuple[float, float] | None = None,
                     device: str = "auto") -> Path:
    """One contact sheet of several runs of one image: a column per run (``labels``), then
    truth and bicubic, a row per zoom, around ``centre`` (default: as :func:`eval_steps`)."""
    from ..data import open_source
    from ..render.renderer import Renderer
    from .plots import contact_sheet, save_contact_sheet
    from .views import BicubicViews, LearnedViews, TruthViews

    source = open_source(image)
    renderers = [Renderer(run, device=device, cache_mb=0) for run in runs]
    R = renderers[0].tile_size
    n_oct = max(r.octaves for r in renderers) if octaves is None else octaves
    truth = TruthViews(source, R)
    if centre is None:
        centre = default_centre(truth, n_oct)
    providers = {label: LearnedViews(r) for label, r in zip(labels, renderers, strict=True)}
    providers |= {"truth": truth, "bicubic": BicubicViews(source, R)}
    return save_contact_sheet(contact_sheet(providers, centre, n_oct), path, centre)


def _describe_run(report, run_dir, renderer, source) -> None:
    """The run's training mode and the compression ratio, in the report."""
    from ..checkpoint import CheckpointError, read_config
    from .compression import compression

    try:
        train = read_config(run_dir)[0].train
        report.positions, report.extra_octaves = train.positions, train.extra_octaves
    except (CheckpointError, OSError):  # a generator in memory, not a run directory
        pass
    report.compression = compression(renderer.G, source, renderer.extent, renderer.octaves)


def _stale(store: Path, want_grid: dict, extra: dict, checkpoint: dict | None) -> str | None:
    """Why a complete store of ours cannot be reused (None: it can): another grid, other
    attributes (seed, image) or, for a learned store, another checkpoint."""
    from ..render.provenance import same_checkpoint

    ours = open_pyramid(store)[1]
    if ours.get("grid") != want_grid:
        return f"it has another grid ({ours.get('grid')})"
    for key, value in extra.items():
        if ours.get(key) != value:
            return f"its {key} is {ours.get(key)!r}, not {value!r}"
    if checkpoint is not None and not same_checkpoint(ours.get("checkpoint"), checkpoint):
        made = ours.get("checkpoint") or {}
        return (f"it was made from checkpoint step {made.get('step', '?')}, the run's is step "
                f"{checkpoint['step']}")
    return None


def compare_steps(run_dir: str | Path, image: object, out_dir: str | Path,
                  octaves: int | None = None, seed: int | None = None, device: str = "auto",
                  views: int = 64, reuse: bool = False, inception: str | Path | None = None,
                  client=None, overwrite: bool = False, notify=None):
    """Export the learned pyramid of ``run_dir`` and the ground truth of ``image`` on the same
    grid into ``out_dir`` (``learned.zarr``, ``truth.zarr``), then :func:`eval_steps` into
    ``out_dir`` (``metrics.json``, ``metrics.png``, ``contact_sheet.png``). Yields
    ``("learned" | "truth" | "eval", done, total)`` and finally ``("report", EvalReport,
    files)``; a stored pyramid exported again is said with ``notify(text)`` (default: a
    warning, which napari shows as a notification).

    Stores already there: ``reuse`` keeps a complete one made on the same grid (and, for the
    learned one, from the same checkpoint: its step and generator weights' hash) and replaces
    one of ours that is stale or incomplete (saying why); ``overwrite`` replaces ours
    whatever they hold; without either an existing store is an error. ``out_dir`` is never
    the run folder, inside it, or the image. With a ``distributed.Client`` the learned
    pyramid and the evaluation are computed by its workers."""
    from ..data import open_source
    from ..render.export import is_complete, learned_steps, truth_steps
    from ..render.output_guard import check_output, is_our_store
    from ..render.placement import image_placement
    from ..render.provenance import checkpoint_identity
    from ..render.renderer import Renderer
    from .evaluate import check_truth

    out = Path(out_dir)
    protect = [run_dir] + ([image] if isinstance(image, str | Path) else [])
    for name in (LEARNED, TRUTH):  # before any work: the folder and its stores are fine
        store = out / name
        replace = overwrite or (reuse and is_our_store(store))
        check_output(store, replace, protect)
    before = checkpoint_identity(run_dir)
    renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=0)
    checkpoint = checkpoint_identity(run_dir)
    if checkpoint != before:
        raise ValueError(f"{run_dir}: a new checkpoint was saved while it was loaded; run "
                         f"the comparison again")
    grid = renderer.grid(octaves)
    source = open_source(image)
    check_truth(source, renderer)
    out.mkdir(parents=True, exist_ok=True)
    want = {"octaves": grid.octaves, "tile": grid.tile, "extent": list(grid.extent)}
    truth_place = (image_placement(image) if isinstance(image, str | Path) else None) \
        or image_placement(source)

    def learned():
        if client is None:
            return learned_steps(renderer, out / LEARNED, octaves, overwrite=replace)
        from ..render.cluster import distributed_learned_steps

        return distributed_learned_steps(client, run_dir, out / LEARNED, octaves, seed,
                                         device, renderer.sizer.fixed, overwrite=replace)

    src = str(image) if isinstance(image, str | Path) else source.name
    jobs = [("learned", out / LEARNED, {"seed": renderer.seed}, checkpoint, learned),
            ("truth", out / TRUTH, {"image": src}, None,
             lambda: truth_steps(image if isinstance(image, str | Path) else source,
                                 out / TRUTH, grid, overwrite=replace, placement=truth_place))]
    for kind, store, extra, ckpt, make in jobs:
        ours = is_our_store(store)
        replace = overwrite or (reuse and ours)
        if reuse and ours:
            why = "it is incomplete" if not is_complete(store) else \
                _stale(store, want, extra, ckpt)
            if why is None:
                yield kind, 1, 1
                continue
            text = f"{store.name}: exporting again: {why}"
            if notify is None:
                warnings.warn(text, stacklevel=2)
            else:
                notify(text)
        for done, total in make():
            yield kind, done, total
    yield from eval_steps(run_dir, image, out / METRICS, out, views=views, octaves=octaves,
                          device=device, inception=inception, renderer=renderer,
                          client=client)
