"""The Triton kernels against the reference, run on the CPU by triton's interpreter
(``TRITON_INTERPRET=1``, set in conftest.py before triton is imported): forward in float32
(1e-5 relative to the output's magnitude) and float16 (1e-2), and gradients."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from napari_scalespace.ops import bias_act, dispatch, filtered_lrelu, upfirdn2d
from napari_scalespace.ops.bias_act import ACTIVATIONS

# Skipped only where triton is not installed at all (the testing extra installs it); where it
# is installed but the kernels cannot be imported, test_the_kernels_import fails instead.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="triton is not installed (pip install -e '.[testing]')")


def test_the_kernels_import_and_run_in_the_interpreter():
    assert os.environ.get("TRITON_INTERPRET") == "1"  # set by conftest.py before triton
    assert dispatch.triton_unavailable() is None

# (up, down, padding (x0, x1, y0, y1), filter shape, flip_filter, gain)
CASES = [
    ((1, 1), (1, 1), (1, 1, 1, 1), (3,), False, 1.0),
    ((2, 2), (1, 1), (2, 1, 2, 1), (4,), False, 4.0),
    ((1, 1), (2, 2), (1, 2, 1, 2), (5, 4), True, 1.0),
    ((4, 2), (1, 2), (3, -1, 2, 0), (7,), False, 1.7),
    ((2, 2), (4, 4), (5, 5, 5, 5), (12, 11), False, 1.0),
    ((1, 4), (2, 1), (0, 0, -2, 6), (8,), True, -0.5),
    ((2, 2), (2, 2), (11, 12, 11, 12), (24,), False, 4.0),
    ((4, 4), (4, 4), (13, 13, 13, 13), (24,), False, 16.0),
]


def _case(seed, fshape, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 9, 10, generator=g, dtype=torch.float64)
    f = torch.randn(*fshape, generator=g, dtype=torch.float64)
    return x.to(dtype), f


@pytest.mark.parametrize(("up", "down", "pad", "fshape", "flip", "gain"), CASES)
def test_upfirdn2d_triton_matches_ref(up, down, pad, fshape, flip, gain):
    x, f = _case(len(fshape) * 7 + up[0], fshape, torch.float32)
    kw = {"up": up, "down": down, "padding": pad, "flip_filter": flip, "gain": gain}
    want = upfirdn2d(x.double(), f, impl="ref", **kw)
    got = upfirdn2d(x, f.float(), impl="triton", **kw)
    assert got.dtype == torch.float32 and got.shape == want.shape
    scale = want.abs().max()
    assert ((got.double() - want).abs().max() / scale) < 1e-5
    # float16 in, float16 out, float32 accumulation
    got16 = upfirdn2d(x.half(), f.float(), impl="triton", **kw)
    assert got16.dtype == torch.float16
    assert ((got16.double() - want).abs().max() / scale) < 1e-2


@pytest.mark.parametrize(("up", "down", "pad", "fshape", "flip", "gain"), CASES[:6])
def test_upfirdn2d_triton_gradient_matches_ref(up, down, pad, fshape, flip, gain):
    x, f = _case(3, fshape, torch.float32)
    kw = {"up": up, "down": down, "padding": pad, "flip_filter": flip, "gain": gain}
    want_y = upfirdn2d(x.double(), f, impl="ref", **kw)
    gy = torch.randn(want_y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    xr = x.double().requires_grad_()
    (upfirdn2d(xr, f, impl="ref", **kw) * gy).sum().backward()
    xt = x.clone().requires_grad_()
    (upfirdn2d(xt, f.float(), impl="triton", **kw) * gy.float()).sum().backward()
    assert ((xt.grad.double() - xr.grad).abs().max() / xr.grad.abs().max()) < 1e-5


def test_triton_is_chosen_for_cpu_tensors_only_when_interpreting():
    x = torch.zeros(1, 1, 4, 4)
    assert dispatch.resolve("triton", x, "upfirdn2d") == "triton"
    assert dispatch.resolve("auto", x, "upfirdn2d") == "fast"


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act_triton_matches_ref_with_gradients(act, clamp):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64) * 2
    b = torch.randn(5, generator=g, dtype=torch.float64)
    kw = {"dim": 2, "act": act, "clamp": clamp}
    xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
    want = bias_act(xr, br, impl="ref", **kw)
    gy = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (want * gy).sum().backward()
    xt, bt = x.float().requires_grad_(), b.float().requires_grad_()
    got = bias_act(xt, bt, impl="triton", **kw)
    (got * gy.float()).sum().backward()
    scale = want.abs().max()
    assert ((got.double() - want).abs().max() / scale) < 1e-5
    assert ((xt.grad.double() - xr.grad).abs().max() / xr.grad.abs().max()) < 1e-5
    assert ((bt.grad.double() - br.grad).abs().max() / br.grad.abs().max()) < 1e-5
    got16 = bias_act(x.half(), b.half(), impl="triton", **kw)
    assert got16.dtype == torch.float16
    assert ((got16.double() - want).abs().max() / scale) < 1e-2


# (up, down, taps up, taps down, radial down, slope, clamp, flip, input H x W)
FLRELU = [
    (2, 2, 6, 6, False, 0.2, None, False, (7, 8)),
    (2, 2, 8, 4, True, 0.2, 0.5, False, (7, 8)),
    (4, 2, 8, 6, False, 0.0, 1.0, True, (7, 8)),
    (1, 1, 3, 3, False, 1.3, None, False, (7, 8)),
    (2, 4, 12, 24, False, 0.2, 0.3, False, (21, 18)),
    (4, 4, 24, 12, False, 0.2, None, True, (11, 9)),
    (2, 2, 12, 12, True, 0.2, 0.6, True, (13, 10)),
    (1, 2, 5, 7, False, 0.2, 0.8, False, (40, 35)),
]


@pytest.mark.parametrize(("up", "down", "tu", "td", "radial", "slope", "clamp", "flip", "hw"),
                         FLRELU)
def test_filtered_lrelu_triton_matches_ref_with_gradients(up, down, tu, td, radial, slope,
                                                         clamp, flip, hw, monkeypatch):
    from napari_scalespace.ops import _triton_flrelu

    fused = []
    real = _triton_flrelu.flrelu_fused
    monkeypatch.setattr(_triton_flrelu, "flrelu_fused",
                        lambda *a: fused.append(1) or real(*a))
    g = torch.Generator().manual_seed(up * 10 + td)
    x = torch.randn(2, 3, *hw, generator=g, dtype=torch.float64)
    fu = torch.randn(tu, generator=g, dtype=torch.float64) / tu
    fd = torch.randn(td, td, generator=g, dtype=torch.float64) / td if radial else \
        torch.randn(td, generator=g, dtype=torch.float64) / td
    b = torch.randn(3, generator=g, dtype=torch.float64)
    total = tu - 1 + td - 1 - (down - 1)
    pad = (total // 2, total - total // 2) * 2
    kw = {"up": up, "down": down, "padding": pad, "slope": slope, "clamp": clamp,
          "flip_filter": flip}
    xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
    want = filtered_lrelu(xr, fu, fd, br, impl="ref", **kw)
    gy = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (want * gy).sum().backward()
    xt, bt = x.float().requires_grad_(), b.float().requires_grad_()
    got = filtered_lrelu(xt, fu.float(), fd.float(), bt, impl="triton", **kw)
    (got * gy.float()).sum().backward()
    assert got.shape == want.shape
    assert fused  # one fused kernel, also for full (radial) down filters
    assert ((got.double() - want).abs().max() / want.abs().max()) < 1e-5
    assert ((xt.grad.double() - xr.grad).abs().max() / xr.grad.abs().max()) < 1e-5
    assert ((bt.grad.double() - br.grad).abs().max() / br.grad.abs().max()) < 1e-5
    got16 = filtered_lrelu(x.half(), fu.float(), fd.float(), b.half(), impl="triton", **kw)
    assert got16.dtype == torch.float16
    assert ((got16.double() - want).abs().max() / want.abs().max()) < 1e-2


def test_a_failing_fused_kernel_falls_back_to_the_unfused_kernels_with_one_warning(
        monkeypatch, recwarn):
    from triton.runtime.errors import OutOfResources

    from napari_scalespace.ops import _triton_flrelu

    def out_of_resources(*args):
        raise OutOfResources(262144, 232448, "shared memory")

    monkeypatch.setattr(_triton_flrelu, "flrelu_fused", out_of_resources)
    dispatch._warned.clear()
    g = torch.Generator().manual_seed(0)
    x, fu, fd = torch.randn(1, 2, 6, 6, generator=g), torch.ones(4) / 4, torch.ones(4) / 4
    kw = {"up": 2, "down": 2, "padding": (3, 2, 3, 2)}
    want = filtered_lrelu(x.double(), fu.double(), fd.double(), impl="ref", **kw)
    for _ in range(2):
        got = filtered_lrelu(x, fu, fd, impl="triton", **kw)
        assert ((got.double() - want).abs().max() / want.abs().max()) < 1e-5
    assert len([w for w in recwarn if "fused filtered_lrelu kernel failed" in
                str(w.message)]) == 1
