"""SSIMULACRA2 (Cloudinary/JPEG XL, Sneyers 2023): a perceptual score of compression artefacts.

A vectorised float32 port of libjxl's ``tools/ssimulacra2.cc`` as transcribed by the PyPI
package ``ssimulacra2`` (0.3.0), which the tests use as the reference: sRGB -> linear -> XYB,
six scales of 2x2 box downsampling (in linear RGB), at each scale an SSIM-like map and an edge
artefact / detail-loss map per XYB channel, pooled by L1 and L4 norms, then the published
108 weights and cubic + power mapping. 100 = identical, ~90 visually lossless, ~70 high
quality, ~50 medium, below 30 low; it can go negative for very different images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MIN_SIZE = 8  # libjxl stops adding scales below 8 px and refuses smaller inputs
NUM_SCALES = 6
K_C2 = 0.0009
_SIGMA = 1.5
# scipy truncate=3.33 at sigma 1.5 -> radius 5, as the reference transcription blurs.
_KERNEL = cv2.getGaussianKernel(11, _SIGMA, cv2.CV_32F)
_RADIUS = 5

_OPSIN = np.array(
    [
        [0.30, 0.622, 0.078],
        [0.23, 0.692, 0.078],
        [0.24342268924547819, 0.20476744424496821, 0.5518098665095536],
    ],
    dtype=np.float32,
)
_BIAS = np.float32(0.0037930732552754493)
_CBRT_BIAS = np.cbrt(_BIAS)

# Weights of libjxl's Msssim::Score(), indexed [channel][scale][norm][ssim, ringing, blurring].
_WEIGHTS = np.array(
    [0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
     0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271, 0.00015231632783718752,
     0.0, 0.0016406437456599754, 0.0, 1.8422455520539298, 11.441172603757666, 0.0,
     0.0007989109436015163, 0.000176816438078653, 0.0, 1.8787594979546387, 10.94906990605142, 0.0,
     0.0007289346991508072, 0.9677937080626833, 0.0, 0.00014003424285435884, 0.9981766977854967,
     0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0,
     0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262, 0.0006235601634041466, 0.0, 0.0,
     6.683678146179332, 0.00037724407979611296, 1.027889937768264, 225.20515300849274, 0.0, 0.0,
     19.213238186143016, 0.0011401524586618361, 0.001237755635509985, 176.39317598450694, 0.0,
     0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
     34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
     0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0,
     0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336,
     0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
     23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353,
     0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
     0.0005130064588990679, 0.0, 0.00010854057858411537],
    dtype=np.float64,
)  # fmt: skip

# sRGB decoding through a 256-entry table: frames are uint8, so this is exact and cheap.
_v = np.arange(256, dtype=np.float64) / 255.0
_SRGB_TO_LINEAR = np.where(_v <= 0.04045, _v / 12.92, ((_v + 0.055) / 1.055) ** 2.4).astype(
    np.float32
)


def _positive_xyb(linear: np.ndarray) -> np.ndarray:
    """libjxl's XYB of linear RGB, shifted positive as ssimulacra2's MakePositiveXYB does."""
    mixed = cv2.transform(linear, _OPSIN)  # per-pixel 3x3 matrix product
    mixed += _BIAS
    np.maximum(mixed, 0.0, out=mixed)
    np.cbrt(mixed, out=mixed)
    mixed -= _CBRT_BIAS
    m0, m1, m2 = cv2.split(mixed)
    y = 0.5 * (m0 + m1)
    x = (m0 - m1) * 7.0 + 0.42  # 0.5 * (m0 - m1) * 14 + 0.42
    return cv2.merge((x, y + 0.01, m2 - y + 0.55))


def _blur(x: np.ndarray) -> np.ndarray:
    # The reference pads rows with zeros and mirrors columns; one padded separable pass does both.
    padded = cv2.copyMakeBorder(x, _RADIUS, _RADIUS, 0, 0, cv2.BORDER_CONSTANT, value=0)
    return _blur_padded(padded)


def _blur_padded(padded: np.ndarray) -> np.ndarray:
    out = cv2.sepFilter2D(padded, -1, _KERNEL, _KERNEL, borderType=cv2.BORDER_REFLECT)
    return out[_RADIUS:-_RADIUS]


def _blur_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``_blur(x * y)``, writing the product straight into the zero-padded buffer."""
    h, w, c = x.shape
    padded = np.empty((h + 2 * _RADIUS, w, c), dtype=np.float32)
    padded[:_RADIUS] = 0.0
    padded[-_RADIUS:] = 0.0
    np.multiply(x, y, out=padded[_RADIUS:-_RADIUS])
    return _blur_padded(padded)


def _downsample(linear: np.ndarray) -> np.ndarray:
    """2x2 box average; an odd last row/column averages the pixels it has (edge-replicated)."""
    h, w = linear.shape[:2]
    if h % 2 or w % 2:
        linear = cv2.copyMakeBorder(linear, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    # INTER_AREA at exactly half size is the plain 2x2 mean.
    size = (linear.shape[1] // 2, linear.shape[0] // 2)
    return cv2.resize(linear, size, interpolation=cv2.INTER_AREA)


def _l1_l4(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and 4-norm mean of a non-negative (H, W, 3) map (cv2 sums in float64)."""
    d2 = d * d
    l1 = np.array(cv2.mean(d)[:3])
    l4 = np.sqrt(np.sqrt(np.array(cv2.mean(np.square(d2, out=d2))[:3])))
    return l1, l4


@dataclass(frozen=True)
class Ssimulacra2Scale:
    """The source side of one scale: positive XYB, its local mean, variance and detail."""

    xyb: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    detail: np.ndarray  # |xyb - mu| + 1, the denominator of the edge ratio


def _enlarge_tiny(rgb: np.ndarray) -> np.ndarray:
    # libjxl refuses frames under 8 px on a side; pixel replication makes them comparable.
    h, w = rgb.shape[:2]
    if h >= MIN_SIZE and w >= MIN_SIZE:
        return rgb
    fy, fx = -(-MIN_SIZE // h), -(-MIN_SIZE // w)
    return np.repeat(np.repeat(rgb, fy, axis=0), fx, axis=1)


def _linear_scales(rgb: np.ndarray, n: int = NUM_SCALES) -> Iterator[np.ndarray]:
    """Linear RGB at each scale of at least 8 px on a side (at most ``n`` of them)."""
    linear = _SRGB_TO_LINEAR[_enlarge_tiny(rgb)]
    for scale in range(n):
        if scale > 0:
            linear = _downsample(linear)
        if min(linear.shape[:2]) < MIN_SIZE:
            return
        yield linear


def ssimulacra2_scales(a_rgb: np.ndarray) -> tuple[Ssimulacra2Scale, ...]:
    """Source-side terms of every scale, computed once per source frame (see ``_against``)."""
    scales = []
    for linear in _linear_scales(a_rgb):
        xyb = _positive_xyb(linear)
        mu = _blur(xyb)
        var = _blur_product(xyb, xyb)
        var -= mu * mu
        detail = np.abs(xyb - mu)
        detail += 1.0
        scales.append(Ssimulacra2Scale(xyb, mu, var, detail))
    return tuple(scales)


def _scale_features(ref: Ssimulacra2Scale, img2: np.ndarray) -> np.ndarray:
    """(3 channels, 2 norms, 3 maps) of one scale: SSIM error, ringing, blurring."""
    # In-place arithmetic: at 1200x600x3 each temporary costs as much as a blur. The variances
    # and the covariance are formed the same way so identical inputs give exactly 100.
    mu1 = ref.mu
    mu2 = _blur(img2)
    s22, s12 = _blur_product(img2, img2), _blur_product(ref.xyb, img2)
    s22 -= mu2 * mu2
    s22 += ref.var
    s22 += K_C2  # denominator: var1 + var2 + C2
    s12 -= mu1 * mu2
    s12 += s12
    s12 += K_C2  # numerator of the structure term: 2 cov + C2
    err = mu1 - mu2
    np.square(err, out=err)
    np.subtract(1.0, err, out=err)  # 1 - (mu1 - mu2)^2: the luminance term on XYB
    err *= s12
    err /= s22
    np.subtract(1.0, err, out=err)
    np.maximum(err, 0.0, out=err)
    # ratio > 0: edges in the render where the source is smooth (ringing, banding, blocking);
    # ratio < 0: edges of the source that the render lost (blur).
    ratio = np.subtract(img2, mu2, out=mu2)
    np.abs(ratio, out=ratio)
    ratio += 1.0
    ratio /= ref.detail
    ratio -= 1.0
    feats = np.empty((3, 2, 3))
    blurring = np.negative(ratio, out=s12)
    np.maximum(blurring, 0.0, out=blurring)
    np.maximum(ratio, 0.0, out=ratio)
    for k, m in enumerate((err, ratio, blurring)):
        l1, l4 = _l1_l4(m)
        feats[:, 0, k], feats[:, 1, k] = l1, l4
    return feats


def _score(scales: list[np.ndarray]) -> float:
    # libjxl walks the weights channel-major over the scales it computed; with fewer than six
    # scales (images under 256 px) the weights shift, exactly as in the reference tool.
    feats = np.stack(scales, axis=1).ravel()  # (channel, scale, norm, map)
    s = float(np.dot(_WEIGHTS[: feats.size], np.abs(feats))) * 0.9562382616834844
    s = 2.326765642916932 * s - 0.020884521182843837 * s * s + 6.248496625763138e-05 * s**3
    return 100.0 - 10.0 * s**0.6276336467831387 if s > 0 else 100.0


def ssimulacra2(a_rgb: np.ndarray, b_rgb: np.ndarray) -> float:
    """SSIMULACRA2 of two uint8 RGB frames of one size: 100 = identical, higher = better.

    Frames under 8 px on a side (which libjxl refuses) are first enlarged by pixel replication.
    """
    return ssimulacra2_against(ssimulacra2_scales(a_rgb), b_rgb)


def ssimulacra2_against(source: Sequence[Ssimulacra2Scale], b_rgb: np.ndarray) -> float:
    """``ssimulacra2`` of the source frame behind ``source`` (``ssimulacra2_scales``) and ``b_rgb``."""
    scales = [
        _scale_features(ref, _positive_xyb(linear))
        for ref, linear in zip(source, _linear_scales(b_rgb, len(source)), strict=True)
    ]
    return float(_score(scales))
