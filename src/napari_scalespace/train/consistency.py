"""The scale-consistency loss: zooming in must agree with what the zoomed-out view shows.

For a *student* view at zoom l, a *teacher* view has the same centre and latent and is zoomed
out by a factor ``f = 2**(u l)``, ``u ~ Beta(alpha, beta)`` with ``n = max(l, 1)``,
``alpha = n**(1/4)``, ``beta = n (alpha - 1) - alpha + 2`` (small zoom-outs are likely; at
``l <= 1`` u is uniform). The student, box-downsampled by ``f``, covers the central ``R/f``
pixels of the teacher; the loss is the L1 distance there, masked to the teacher pixels the
student covers fully. Box-downsampling by a non-integer ``f`` is the exact area average: teacher
pixel t is ``sum_i A[t, i] S[i]`` (separably in y and x), with ``A[t, i]`` the overlap of
teacher pixel t with student pixel i, in teacher pixels (zero outside the student: zero padding).

With probability 1/2 the student is detached (the teacher learns from the student), otherwise
the teacher (the student learns from the teacher; it is then rendered without a graph).
:func:`consistency_loss` does all of it: draw (:func:`draw_teachers`), render, detach,
compare.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..geometry import nested_pixel_edges, zoomed_out


def zoom_out_exponent(zoom: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``u ~ Beta(alpha(n), beta(n))`` per sample; the teacher is at zoom ``l - u l``."""
    n = np.maximum(np.asarray(zoom, dtype=np.float64), 1.0)
    alpha = n**0.25
    beta = n * (alpha - 1) - alpha + 2
    return rng.beta(alpha, beta)


def nested_area_weights(factor: torch.Tensor, resolution: int) -> torch.Tensor:
    """``A [B, R, R]``: overlap of teacher pixel t with student pixel i (teacher pixel units).

    Student and teacher are centred on the same point; the student's side is ``1/factor`` of
    the teacher's, so student pixel i spans ``[R/2 + (i - R/2)/f, R/2 + (i + 1 - R/2)/f)``.
    """
    R = resolution
    edges = nested_pixel_edges(factor, R)  # [B, R+1]
    lo, hi = edges[:, None, :-1], edges[:, None, 1:]  # student pixel i
    t = torch.arange(R, dtype=factor.dtype, device=factor.device)[None, :, None]
    return (torch.minimum(hi, t + 1) - torch.maximum(lo, t)).clamp_min(0)


def downsample_into_teacher(student: torch.Tensor, factor: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-downsample ``student [B, C, R, R]`` by ``factor [B]`` onto the teacher's pixel grid.

    Returns ``(image [B, C, R, R], mask [B, 1, R, R])``: mask is 1 where the student covers the
    teacher pixel fully, else 0.
    """
    R = student.shape[-1]
    A = nested_area_weights(factor.to(student.dtype), R)  # [B, R, R]
    image = A[:, None] @ student @ A.transpose(1, 2)[:, None]
    cover = A.sum(2)  # [B, R]
    full = (cover > 1 - 1e-4).to(student.dtype)
    mask = full[:, :, None] * full[:, None, :]
    return image, mask[:, None]


def consistency_l1(student: torch.Tensor, teacher: torch.Tensor, factor: torch.Tensor
                   ) -> torch.Tensor:
    """Masked L1 between the downsampled student and the teacher (mean over covered pixels)."""
    down, mask = downsample_into_teacher(student, factor)
    per_sample = ((down - teacher).abs() * mask).sum([1, 2, 3])
    covered = mask.sum([1, 2, 3]) * student.shape[1]
    return (per_sample / covered.clamp_min(1)).mean()


class Teachers(NamedTuple):
    """The teachers of a batch: their zooms, the zoom-out factors, and whether the teacher
    is the side that learns (the student is then detached)."""

    zoom: np.ndarray
    factor: np.ndarray
    teacher_learns: bool


def draw_teachers(zoom: torch.Tensor, rng: np.random.Generator) -> Teachers:
    """Each sample's teacher (:func:`zoom_out_exponent`, :func:`..geometry.zoomed_out`) and the
    fair coin that picks the side that learns, drawn from ``rng`` in that order."""
    levels = zoom.detach().cpu().numpy()
    teacher_zoom, factor = zoomed_out(levels, zoom_out_exponent(levels, rng))
    return Teachers(teacher_zoom, factor, bool(rng.random() < 0.5))


def consistency_loss(G: torch.nn.Module, z: torch.Tensor, zoom: torch.Tensor, cy: torch.Tensor,
                     cx: torch.Tensor, student: torch.Tensor,
                     rng: np.random.Generator | None = None,
                     teachers: Teachers | None = None) -> torch.Tensor:
    """The scale-consistency loss of ``student``, the render ``G(z, zoom, cy, cx)``: each
    sample's teacher drawn (:func:`draw_teachers` from ``rng``, unless ``teachers`` were drawn
    already) and rendered, one side detached by the coin, :func:`consistency_l1`. (A caller
    that knows the teacher learns can backward its other losses first and pass a detached
    student: the student's graph is then gone before the teacher's is built.)"""
    teacher_zoom, factor, teacher_learns = (teachers if teachers is not None
                                            else draw_teachers(zoom, rng))
    with torch.set_grad_enabled(teacher_learns and torch.is_grad_enabled()):
        teacher = G(z, torch.from_numpy(teacher_zoom).to(zoom), cy, cx)  # no graph: detached
    if teacher_learns:
        student = student.detach()
    factor = torch.from_numpy(factor).to(student.dtype).to(student.device)
    return consistency_l1(student, teacher, factor)
