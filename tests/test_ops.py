"""The ops: ``fast`` equals the ``ref`` specification, both have correct gradients, the spec is
the documented formula, and bad arguments are rejected with a message naming them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from napari_scalespace.ops import _fused_cpu, bias_act, filtered_lrelu, lowpass_filter, upfirdn2d
from napari_scalespace.ops.bias_act import ACTIVATIONS

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
FACTORS = st.sampled_from([1, 2, 4])


def assert_matches(fast: torch.Tensor, ref: torch.Tensor, scale: float = 0.0) -> None:
    """fast == ref to TOL relative to the magnitude of the signal (the output's, or ``scale``
    when the op compressed larger intermediate values, as a clamp does)."""
    assert fast.shape == ref.shape
    scale = max(ref.abs().max().item(), scale, 1e-30)
    err = (fast - ref).abs().max().item() / scale
    assert err <= TOL[ref.dtype], f"relative error {err:.3g}"


@st.composite
def upfirdn_case(draw):
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    up, down = draw(FACTORS), draw(FACTORS)
    radial = draw(st.booleans())
    taps = draw(st.integers(1, 9))
    f_shape = (taps, draw(st.integers(1, 9))) if radial else (taps,)
    tx, ty = (f_shape[1], f_shape[0]) if radial else (taps, taps)
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pads = [draw(st.integers(-3, 8)) for _ in range(4)]  # x0, x1, y0, y1
    pads[1] += max(0, tx - (w * up + pads[0] + pads[1]))  # the filter must fit
    pads[3] += max(0, ty - (h * up + pads[2] + pads[3]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w, generator=g,
                    dtype=dtype)
    f = torch.randn(f_shape, generator=g, dtype=dtype)
    kwargs = dict(up=up, down=down, padding=tuple(pads), flip_filter=draw(st.booleans()),
                  gain=draw(st.sampled_from([1.0, 4.0, -0.5])))
    return x, f, kwargs


@settings(max_examples=150, deadline=None)
@given(upfirdn_case())
def test_upfirdn2d_fast_matches_ref(case):
    x, f, kwargs = case
    assert_matches(upfirdn2d(x, f, impl="fast", **kwargs), upfirdn2d(x, f, impl="ref", **kwargs))


@st.composite
def flrelu_case(draw):
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    up, down = draw(FACTORS), draw(FACTORS)
    tu = draw(st.integers(1, 8)) if up == 1 else draw(st.integers(up, 4 * up))
    td = draw(st.integers(1, 8))
    radial_u, radial_d = draw(st.booleans()), draw(st.booleans())
    h, w = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    pads = [draw(st.integers(-3, tu + td + 3)) for _ in range(4)]  # x0, x1, y0, y1
    taps = tu + td - 1  # the filters must fit: at least one output sample
    pads[1] += max(0, taps - (w * up + pads[0] + pads[1]))
    pads[3] += max(0, taps - (h * up + pads[2] + pads[3]))
    pads = tuple(pads)
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w, generator=g,
                    dtype=dtype)
    fu = torch.randn((tu, tu) if radial_u else (tu,), generator=g, dtype=dtype)
    fd = torch.randn((td, td) if radial_d else (td,), generator=g, dtype=dtype)
    b = torch.randn(x.shape[1], generator=g, dtype=dtype) if draw(st.booleans()) else None
    clamp = draw(st.sampled_from([None, 0.5, 3.0]))
    kwargs = dict(b=b, up=up, down=down, padding=pads, clamp=clamp,
                  gain=draw(st.sampled_from([math.sqrt(2), 1.0, -1.5])),
                  slope=draw(st.sampled_from([0.2, 0.0, 1.3])), flip_filter=draw(st.booleans()))
    return x, fu, fd, kwargs


@settings(max_examples=150, deadline=None)
@given(flrelu_case(), st.sampled_from(["fused", "torch", "torch+grad"]))
def test_filtered_lrelu_fast_matches_ref(case, path):
    """All three ways ``fast`` runs: the fused kernel (no gradient needed, 1-D filters), the
    torch passes without autograd (kernel off) and with it."""
    x, fu, fd, kwargs = case
    try:
        _fused_cpu.ENABLED = path == "fused"
        xin = x.clone().requires_grad_(True) if path == "torch+grad" else x
        fast = filtered_lrelu(xin, fu, fd, impl="fast", **kwargs).detach()
    finally:
        _fused_cpu.ENABLED = True
    # rounding errors scale with the values before the clamp, not with the clamped output
    unclamped = filtered_lrelu(x, fu, fd, impl="ref", **{**kwargs, "clamp": None})
    assert_matches(fast, filtered_lrelu(x, fu, fd, impl="ref", **kwargs),
                   scale=unclamped.abs().max().item())


@settings(max_examples=60, deadline=None)
@given(flrelu_case(), st.sampled_from([1, 2, 3]))
def test_the_fused_kernel_matches_ref_on_any_number_of_threads(case, threads):
    """Row blocks per thread recompute the rows they share with their neighbours: any split of
    the output rows (blocks of one or a few rows, empty ones) gives ref's values."""
    x, fu, fd, kwargs = case
    assume(fu.ndim == 1 and fd.ndim == 1)
    k = {**kwargs}
    up, down = (k["up"],) * 2, (k["down"],) * 2
    got = _fused_cpu.filtered_lrelu_fused(x, fu, fd, k["b"], up, down, k["padding"], k["gain"],
                                          k["slope"], k["clamp"], k["flip_filter"], threads)
    unclamped = filtered_lrelu(x, fu, fd, impl="ref", **{**kwargs, "clamp": None})
    assert_matches(got, filtered_lrelu(x, fu, fd, impl="ref", **kwargs),
                   scale=unclamped.abs().max().item())


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act_fast_matches_ref(act, dtype, clamp):
    x = torch.randn(2, 5, 3, 4, dtype=dtype)
    b = torch.randn(5, dtype=dtype)
    ref = bias_act(x, b, act=act, clamp=clamp, impl="ref")
    assert_matches(bias_act(x, b, act=act, clamp=clamp, impl="fast"), ref)
    with torch.no_grad():  # the in-place path
        assert_matches(bias_act(x, b, act=act, clamp=clamp, impl="fast"), ref)


def test_bias_act_is_the_documented_formula():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64)
    v = x + b
    want = (torch.where(v >= 0, v, 0.2 * v) * math.sqrt(2)).clamp(-1, 1)
    for impl in ("ref", "fast"):
        got = bias_act(x, b, dim=2, act="lrelu", clamp=1.0, impl=impl)
        torch.testing.assert_close(got, want)


def scipy_separable(x: np.ndarray, f: np.ndarray, up: int, down: int) -> np.ndarray:
    """Full zero-insert/convolve/decimate (scipy.signal.upfirdn) along x, then y."""
    rows = np.stack([scipy.signal.upfirdn(f, r, up, down) for r in x])
    return np.stack([scipy.signal.upfirdn(f, c, up, down) for c in rows.T]).T


@pytest.mark.parametrize(("up", "down", "taps"), [(1, 1, 3), (2, 1, 4), (1, 2, 5), (4, 2, 8),
                                                  (2, 4, 7), (3, 1, 6)])
def test_upfirdn2d_ref_is_scipy_upfirdn(up, down, taps):
    # padding (taps-1, taps-up) turns the spec into the full convolution scipy computes
    rng = np.random.default_rng(up * 10 + down)
    x, f = rng.standard_normal((7, 9)), rng.standard_normal(taps)
    p0, p1 = taps - 1, taps - up
    for impl in ("ref", "fast"):
        got = upfirdn2d(torch.from_numpy(x)[None, None], torch.from_numpy(f), up=up, down=down,
                        padding=(p0, p1, p0, p1), gain=up**2, impl=impl)[0, 0].numpy()
        np.testing.assert_allclose(got, scipy_separable(x, f * up, up, down), rtol=1e-10,
                                   atol=1e-12)


def test_filtered_lrelu_is_the_documented_composition():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 6, 5, generator=g, dtype=torch.float64)
    fu, fd = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(4, generator=g,
                                                                            dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    v = upfirdn2d(x + b[None, :, None, None], fu, up=2, padding=5, gain=4)
    want = upfirdn2d((torch.where(v >= 0, v, 0.2 * v) * 1.5).clamp(-2, 2), fd, down=2)
    for impl in ("ref", "fast"):
        got = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=5, gain=1.5, clamp=2.0,
                             impl=impl)
        torch.testing.assert_close(got, want)


def test_a_clamp_only_the_upsampled_overshoot_reaches_is_applied():
    """``fast`` skips the clamp when a bound found on the input says no value can reach it; a
    step's ringing after up-sampling exceeds the input's range, so a clamp between the two must
    still act (and one above the bound must change nothing)."""
    x = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
    x[..., 6:] = 1.0
    fu = lowpass_filter(12, cutoff=0.5, width=0.5, fs=4.0, dtype=torch.float64)
    fd = lowpass_filter(12, cutoff=0.5, width=0.5, fs=4.0, dtype=torch.float64)
    kw = dict(up=2, down=2, padding=11, gain=1.0)
    v = upfirdn2d(x, fu, up=2, padding=11, gain=4)
    assert v.max() > 1.02  # the ringing overshoots the input's maximum of 1
    clamp = 1.01
    want = filtered_lrelu(x, fu, fd, clamp=clamp, impl="ref", **kw)
    torch.testing.assert_close(filtered_lrelu(x, fu, fd, clamp=clamp, impl="fast", **kw), want)
    assert not torch.allclose(want, filtered_lrelu(x, fu, fd, impl="ref", **kw))
    loose = filtered_lrelu(x, fu, fd, clamp=100.0, impl="fast", **kw)
    torch.testing.assert_close(loose, filtered_lrelu(x, fu, fd, impl="ref", **kw))


def test_output_sizes_follow_the_formulas():
    x = torch.randn(1, 1, 10, 7)
    y = upfirdn2d(x, torch.ones(5), up=2, down=3, padding=(1, 2, 3, 4))
    assert y.shape[-2:] == ((10 * 2 + 7 - 5 + 3) // 3, (7 * 2 + 3 - 5 + 3) // 3)
    z = filtered_lrelu(x, torch.ones(4), torch.ones(3), up=2, down=2, padding=(2, 3, 4, 5))
    assert z.shape[-2:] == ((20 + 9 - 3 - 2 + 1) // 2, (14 + 5 - 3 - 2 + 1) // 2)


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize(("up", "down", "radial"), [(1, 1, False), (2, 1, False), (1, 2, True),
                                                    (2, 2, False), (4, 2, True)])
def test_upfirdn2d_gradients(impl, up, down, radial):
    g = torch.Generator().manual_seed(up + 3 * down)
    x = torch.randn(1, 2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    f = torch.randn((4, 3) if radial else (4,), generator=g, dtype=torch.float64)
    fn = lambda t: upfirdn2d(t, f, up=up, down=down, padding=(2, 1, 3, 0), impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize(("up", "down", "clamp"), [(2, 2, None), (4, 2, 1.0), (1, 1, None),
                                                   (2, 1, 2.0)])
def test_filtered_lrelu_gradients(impl, up, down, clamp):
    g = torch.Generator().manual_seed(up + 5 * down)
    x = torch.randn(1, 2, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    fu = torch.randn(2 * up, generator=g, dtype=torch.float64)
    fd = torch.randn(4, 4, generator=g, dtype=torch.float64)

    def fn(t, bias):
        return filtered_lrelu(t, fu, fd, bias, up=up, down=down, padding=4, clamp=clamp,
                              impl=impl)

    assert torch.autograd.gradcheck(fn, (x, b))


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize(("act", "clamp"), [("lrelu", None), ("lrelu", 0.5), ("tanh", None),
                                           ("swish", None)])
def test_bias_act_gradients(impl, act, clamp):
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t, c: bias_act(t, c, act=act, clamp=clamp, impl=impl), (x, b))
    # second derivatives too: the discriminator's R1 penalty differentiates its gradient
    assert torch.autograd.gradgradcheck(
        lambda t, c: bias_act(t, c, act=act, clamp=clamp, impl=impl), (x, b))
    if clamp is not None:  # the clamp acted on some values (their gradient is 0)
        assert (bias_act(x, b, act=act, clamp=clamp, impl=impl).abs() == clamp).any()


X = torch.zeros(1, 1, 8, 8)
BAD_ARGUMENTS = [
    ("x", lambda: upfirdn2d(torch.zeros(1, 8, 8), torch.ones(3))),
    ("x", lambda: upfirdn2d(torch.zeros(1, 1, 8, 8, dtype=torch.int32), torch.ones(3))),
    ("x", lambda: filtered_lrelu(torch.zeros(8, 8))),
    ("f", lambda: upfirdn2d(X, torch.ones(12))),
    ("f", lambda: upfirdn2d(X, torch.ones(2, 2, 2))),
    ("f", lambda: upfirdn2d(X, torch.ones(3, dtype=torch.int64))),
    ("up", lambda: upfirdn2d(X, torch.ones(3), up=0)),
    ("down", lambda: upfirdn2d(X, torch.ones(3), down=-1)),
    ("padding", lambda: upfirdn2d(X, torch.ones(3), padding=(1, 2, 3))),
    ("fu", lambda: filtered_lrelu(X, fu=torch.ones(30), up=2)),
    ("fd", lambda: filtered_lrelu(X, fd=torch.ones(9))),
    ("fd", lambda: filtered_lrelu(X, fd=torch.ones(3, 3, 3))),
    ("up", lambda: filtered_lrelu(X, up=0)),
    ("b", lambda: filtered_lrelu(X, b=torch.ones(2))),
    ("clamp", lambda: filtered_lrelu(X, clamp=-1.0)),
    ("act", lambda: bias_act(X, act="gelu2")),
    ("dim", lambda: bias_act(X, torch.ones(8), dim=4)),
    ("impl", lambda: upfirdn2d(X, torch.ones(3), impl="cuda")),
]


@pytest.mark.parametrize(("name", "call"), BAD_ARGUMENTS)
def test_bad_arguments_raise_value_error_naming_them(name, call):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_triton_request_on_cpu_falls_back_to_fast_with_one_warning(recwarn, monkeypatch):
    from napari_scalespace.ops import dispatch

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    dispatch._warned.clear()
    x, f = torch.randn(1, 2, 6, 6), torch.ones(3) / 3
    want = upfirdn2d(x, f, impl="ref")
    assert dispatch.resolve("auto", x, "upfirdn2d") == "fast"
    for _ in range(3):
        assert_matches(upfirdn2d(x, f, impl="triton"), want)
    got = [str(w.message) for w in recwarn if "triton" in str(w.message).lower()]
    assert len(got) == 1 and "needs a CUDA tensor" in got[0]
    # an op without a kernel: one warning naming it, the fast path
    dispatch._warned.clear()
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for _ in range(2):
        assert dispatch.resolve("triton", x, "an_op") == "fast"
    got = [str(w.message) for w in recwarn if "no Triton kernel for an_op" in str(w.message)]
    assert len(got) == 1


def test_auto_on_cuda_without_triton_warns_once_and_uses_ref(recwarn, monkeypatch):
    """Without a GPU here, a tensor that claims to be on CUDA stands in for one: the decision
    depends only on the device type and on whether triton imports."""
    from napari_scalespace.ops import dispatch

    class FakeCuda:
        device = torch.device("cuda")

    dispatch._warned.clear()
    monkeypatch.setattr(dispatch, "_triton_error", ["ImportError: No module named 'triton'"])
    for _ in range(3):
        assert dispatch.resolve("auto", FakeCuda(), "upfirdn2d") == "ref"
    got = [str(w.message) for w in recwarn if "Triton is unavailable" in str(w.message)]
    assert len(got) == 1 and "No module named" in got[0]
    monkeypatch.setattr(dispatch, "_triton_error", [None])
    assert dispatch.resolve("auto", FakeCuda(), "upfirdn2d") == "triton"
    assert dispatch.resolve("auto", FakeCuda(), "an_op") == "ref"


def test_planned_stages_follow_their_filter_and_serve_autograd():
    """The fast path plans a stage once per filter tensor: an in-place change of the filter
    is seen, a plan made while rendering (inference mode) also serves training, and filters
    made in inference mode (no version counter) still work."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 12, 12)
    f = lowpass_filter(8, cutoff=0.5, width=0.5, fs=4.0)
    args = dict(up=2, down=2, padding=3)
    with torch.inference_mode():
        before = filtered_lrelu(x, f, f, impl="fast", **args)
    torch.testing.assert_close(before, filtered_lrelu(x, f, f, impl="ref", **args))
    with torch.no_grad():
        f.mul_(0.5)  # same tensor, new values
    after = filtered_lrelu(x, f, f, impl="fast", **args)
    torch.testing.assert_close(after, filtered_lrelu(x, f, f, impl="ref", **args))
    assert not torch.allclose(after, before)
    xg = x.double().requires_grad_()
    fd = f.double()
    with torch.inference_mode():
        filtered_lrelu(xg.detach(), fd, fd, impl="fast", **args)  # planned in inference mode
    assert torch.autograd.gradcheck(
        lambda v: filtered_lrelu(v, fd, fd, impl="fast", **args), (xg[:, :1, :8, :8],))
    with torch.inference_mode():
        g = lowpass_filter(8, cutoff=0.5, width=0.5, fs=4.0) * 1.0  # an inference tensor
        torch.testing.assert_close(filtered_lrelu(x, g, g, impl="fast", **args),
                                   filtered_lrelu(x, g, g, impl="ref", **args))


def test_the_fused_cpu_kernel_serves_inference_and_autograd_keeps_the_torch_passes(
        monkeypatch):
    """``fast`` takes the fused kernel exactly when no gradient is needed and both filters are
    1-D; from several Python threads at once it gives what one thread gives."""
    calls = []
    fused = _fused_cpu.filtered_lrelu_fused
    monkeypatch.setattr(_fused_cpu, "filtered_lrelu_fused",
                        lambda *a: calls.append(1) or fused(*a))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 16, 32, 32, generator=g)  # enough work for several threads
    fu = lowpass_filter(12, cutoff=4, width=4, fs=32.0)
    b = torch.randn(16, generator=g)
    kw = dict(up=2, down=2, padding=11, clamp=256.0)
    with torch.inference_mode():
        want = filtered_lrelu(x, fu, fu, b, impl="fast", **kw)
    assert len(calls) == 1 and want.is_contiguous(memory_format=torch.channels_last)
    xg = x.clone().requires_grad_(True)
    got = filtered_lrelu(xg, fu, fu, b, impl="fast", **kw)
    got.square().mean().backward()
    assert len(calls) == 1 and xg.grad is not None  # autograd: the torch passes
    torch.testing.assert_close(got.detach(), want)
    filtered_lrelu(x, fu, lowpass_filter(6, 4, 4, 32.0, radial=True), b, impl="fast", **kw)
    assert len(calls) == 1  # a 2-D (radial) filter: the torch passes
    monkeypatch.setattr(_fused_cpu, "_kernels", [None])  # numba broken: the torch passes
    torch.testing.assert_close(filtered_lrelu(x, fu, fu, b, impl="fast", **kw), want)
    assert len(calls) == 1
    monkeypatch.undo()
    monkeypatch.setattr(_fused_cpu, "filtered_lrelu_fused",
                        lambda *a: calls.append(1) or fused(*a))
    # any memory layout of the input: channels-last, a strided crop of a larger tensor
    big = torch.randn(2, 16, 38, 39, generator=g)
    crop = big[:, :, 3:35, 5:37]
    for layout in (x.contiguous(memory_format=torch.channels_last), crop):
        torch.testing.assert_close(filtered_lrelu(layout, fu, fu, b, impl="fast", **kw),
                                   filtered_lrelu(layout, fu, fu, b, impl="ref", **kw))
    assert len(calls) == 3

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: filtered_lrelu(x, fu, fu, b, impl="fast", **kw),
                             range(8)))
    assert len(calls) == 11
    for out in outs:
        torch.testing.assert_close(out, want, rtol=0, atol=0)
