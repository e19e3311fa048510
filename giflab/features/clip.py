"""Zero-shot CLIP content scores: how much a GIF looks like each of six kinds of imagery.

One model load path: the weights are resolved to a *local file* first (an explicit
``weights_path``, a file given as ``pretrained``, or the open_clip / Hugging Face cache entry of a
pretrained tag), then passed to ``open_clip.create_model_and_transforms(model_name,
pretrained=<file>, cache_dir=...)``. Nothing here ever downloads: when no file is found the scorer
raises ``ClipUnavailable`` at once, and callers store the six scores as NULL with its reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from giflab.errors import GifLabError

CLIP_CLASSES = (
    "screen_capture",
    "vector_art",
    "photography",
    "hand_drawn",
    "3d_rendered",
    "pixel_art",
)
CLIP_FEATURES = tuple(f"clip_{c}" for c in CLIP_CLASSES)

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"

# Several phrasings per class, averaged in embedding space (CLIP paper, "prompt ensembling"):
# one prompt alone is sensitive to wording.
PROMPTS: dict[str, tuple[str, ...]] = {
    "screen_capture": (
        "a screenshot of a computer screen",
        "a screen recording of a software user interface",
        "a screenshot of a website or app with text and buttons",
        "a screen capture of a terminal window",
    ),
    "vector_art": (
        "a flat vector illustration",
        "a simple vector graphic with flat colors and clean shapes",
        "a minimalist logo or icon animation",
        "a motion graphics animation with flat shapes",
    ),
    "photography": (
        "a photograph",
        "a photo of a real scene",
        "a frame from a live-action video",
        "a realistic camera photo of people or places",
    ),
    "hand_drawn": (
        "a hand-drawn cartoon",
        "a frame from an anime",
        "a hand-drawn sketch or illustration",
        "a traditional 2D animation drawing",
    ),
    "3d_rendered": (
        "a 3D rendered image",
        "a computer-generated 3D render",
        "a frame from a 3D animated film",
        "a CGI scene with 3D models and lighting",
    ),
    "pixel_art": (
        "pixel art",
        "a retro 8-bit video game sprite",
        "a low-resolution pixel art animation",
        "a 16-bit pixel art game scene",
    ),
}


class ClipUnavailable(GifLabError):
    """CLIP cannot score: weights missing or unusable. ``reason`` is stored beside the NULLs."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"clip: unavailable: {reason}")


_LIGHT_PACKAGE = "_giflab_open_clip_tables"


def _pretrained_module() -> ModuleType:
    """``open_clip.pretrained``: the real module when open_clip is already imported, else the
    same file loaded without torch (``_light_pretrained_module``)."""
    if "open_clip" in sys.modules:
        from open_clip import pretrained

        return pretrained
    try:
        return _light_pretrained_module()
    except Exception:  # a future open_clip whose table needs more: pay for the full import
        from open_clip import pretrained

        return pretrained


def _light_pretrained_module() -> ModuleType:
    """``open_clip.pretrained`` (the table of pretrained tags, file names and hub ids) without
    ``open_clip/__init__``, which imports torch and every model (~2-5 s): the file and the two
    it imports (``constants``, ``version``) are plain Python, so they are loaded as submodules
    of a stand-in package. Its optional ``import safetensors.torch`` (which imports torch) is
    made to fail meanwhile: the table does not need it."""
    block = "safetensors.torch" not in sys.modules
    try:
        if block:
            sys.modules["safetensors.torch"] = None  # type: ignore[assignment]
        if _LIGHT_PACKAGE not in sys.modules:
            spec = importlib.util.find_spec("open_clip")  # locates it, runs nothing
            package = ModuleType(_LIGHT_PACKAGE)
            package.__path__ = list(spec.submodule_search_locations or [])
            sys.modules[_LIGHT_PACKAGE] = package
        return importlib.import_module(f"{_LIGHT_PACKAGE}.pretrained")
    finally:
        if block:
            sys.modules.pop("safetensors.torch", None)


def cached_weights_file(model_name: str, pretrained: str, cache_dir: str | None) -> Path | None:
    """The local file holding ``pretrained`` weights for ``model_name``, or None if not cached.

    Looks where open_clip would download to, without touching the network: the Hugging Face cache
    (``open_clip_model.safetensors`` then ``open_clip_pytorch_model.bin``) and open_clip's URL
    cache (``cache_dir`` or ``~/.cache/clip``).
    """
    cfg = _pretrained_module().get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        return None
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return Path(cfg["file"])
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub)
        names = [filename] if filename else []
        names += ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            hit = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit)
    url = cfg.get("url", "")
    if url:
        local = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(url)
        if local.is_file():
            return local
    return None


class ClipScorer:
    """Zero-shot six-class content scores from an open_clip model, on CPU by default.

    ``pretrained`` is an open_clip tag (looked up in the local cache) or a path to a weights file;
    ``weights_path`` (a local file) takes precedence over both; ``model_config_path`` registers
    an open_clip model config JSON (named after the file) for models open_clip does not ship.
    ``num_threads`` is applied with
    ``torch.set_num_threads`` on every call (torch's setting is process-wide).
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        pretrained: str = DEFAULT_PRETRAINED,
        weights_path: str | Path | None = None,
        cache_dir: str | Path | None = None,
        num_threads: int = 1,
        device: str = "cpu",
        model_config_path: str | Path | None = None,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.weights_path = None if weights_path is None else Path(weights_path)
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.num_threads = int(num_threads)
        self.device = device
        self.model_config_path = None if model_config_path is None else Path(model_config_path)
        self._model = None
        self._preprocess = None
        self._text = None
        self.logit_scale: float | None = None

    def resolve_weights(self) -> Path:
        """The local weights file to load; ``ClipUnavailable`` (no download attempted) if none."""
        if self.weights_path is not None:
            if not self.weights_path.is_file():
                raise ClipUnavailable(f"weights_path {self.weights_path} is not a file")
            return self.weights_path
        if self.pretrained and Path(self.pretrained).is_file():
            return Path(self.pretrained)
        found = cached_weights_file(self.model_name, self.pretrained, self.cache_dir)
        if found is None:
            raise ClipUnavailable(
                f"no local weights for {self.model_name}/{self.pretrained} in cache "
                f"{self.cache_dir or 'default (HF hub cache, ~/.cache/clip)'}; "
                "set weights_path to a downloaded checkpoint (see docs/features.md)"
            )
        return found

    def load(self) -> ClipScorer:
        """Load the model and cache the class text embeddings (idempotent); returns self."""
        if self._model is not None:
            return self
        import open_clip
        import torch
        from open_clip.pretrained import get_pretrained_cfg

        weights = self.resolve_weights()
        if self.model_config_path is not None:  # a model outside open_clip's own configs
            if not self.model_config_path.is_file():
                raise ClipUnavailable(f"model config {self.model_config_path} is not a file")
            open_clip.add_model_config(self.model_config_path)
        torch.set_num_threads(self.num_threads)
        # A tag's weights may need its preprocessing and activation (e.g. OpenAI's QuickGELU);
        # a plain file uses the model config's defaults.
        tag_cfg = (
            {}
            if weights == self.weights_path
            else get_pretrained_cfg(self.model_name, self.pretrained)
        )
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name,
                pretrained=str(weights),
                cache_dir=self.cache_dir,
                device=self.device,
                force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                image_mean=tag_cfg.get("mean"),
                image_std=tag_cfg.get("std"),
            )
        except Exception as e:  # a corrupt or mismatched file: record why, never crash a batch
            raise ClipUnavailable(f"cannot load {self.model_name} from {weights}: {e}") from e
        model.eval()
        tokenizer = open_clip.get_tokenizer(self.model_name, cache_dir=self.cache_dir)
        with torch.inference_mode():
            per_class = []
            for cls in CLIP_CLASSES:
                emb = model.encode_text(tokenizer(list(PROMPTS[cls])).to(self.device))
                emb = emb / emb.norm(dim=-1, keepdim=True)
                mean = emb.mean(dim=0)
                per_class.append(mean / mean.norm())
            self._text = torch.stack(per_class)
            self.logit_scale = float(model.logit_scale.exp().item())
        self._model, self._preprocess = model, preprocess
        return self

    def image_embeddings(self, frames_rgb: Sequence[np.ndarray]):
        """L2-normalised image embeddings (torch, n x d) of uint8 RGB frames, in one batch."""
        import torch
        from PIL import Image

        self.load()
        torch.set_num_threads(self.num_threads)
        batch = torch.stack([self._preprocess(Image.fromarray(f)) for f in frames_rgb])
        with torch.inference_mode():
            emb = self._model.encode_image(batch.to(self.device))
            return emb / emb.norm(dim=-1, keepdim=True)

    @property
    def text_embeddings(self):
        """The six normalised, prompt-averaged class embeddings (torch, 6 x d)."""
        self.load()
        return self._text

    def score(self, frames_rgb: Sequence[np.ndarray]) -> dict[str, float]:
        """Per-class probabilities (``clip_<class>``), softmax(logit_scale * cos) mean over frames.

        Raises ``ClipUnavailable`` when the weights are missing, ``ValueError`` for no frames.
        """
        import torch

        if len(frames_rgb) == 0:
            raise ValueError("no frames to score")
        img = self.image_embeddings(frames_rgb)
        with torch.inference_mode():
            logits = self.logit_scale * (img @ self._text.T)
            probs = logits.double().softmax(dim=-1).mean(dim=0)
        return {name: float(p) for name, p in zip(CLIP_FEATURES, probs.tolist(), strict=True)}
