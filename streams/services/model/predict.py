"""The reference model: concepts and an embedding computed from the input itself, the same for the same input.

Images are judged by pixel statistics (Pillow): brightness, saturation, dominant hue, contrast, shape and
detail. Texts by keywords: word lists per topic and per tone. The embedding is a fixed linear projection
of the input's features (the label scores, a hue histogram and an 8x8 grayscale thumbnail for images,
hashed words for texts), normalised to unit length: similar inputs get near embeddings. Nothing is random
and nothing is downloaded; the projection matrices come from a fixed seed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageStat, UnidentifiedImageError

MODEL_VERSION_ID = "c011ec7045a54b2f9e0d1f3e5a7b9c01"
"""The one version of the reference model, answered when a request names none."""

EMBEDDING_DIMENSIONS = 64

IMAGE_LABELS = (
    "bright",
    "dark",
    "colorful",
    "monochrome",
    "red",
    "yellow",
    "green",
    "blue",
    "high-contrast",
    "low-contrast",
    "landscape",
    "portrait",
    "detailed",
    "smooth",
)

_KEYWORD_LISTS = {
    "animal": "dog dogs puppy cat cats kitten bird birds horse cow fish pet pets animal animals",
    "vehicle": "car cars truck trucks bus train bike bicycle motorcycle plane boat vehicle",
    "food": "food pizza bread cake apple fruit coffee tea dinner lunch breakfast meal soup",
    "person": "person people man woman child children boy girl friend family face crowd",
    "nature": "tree trees forest mountain river lake sea beach sky flower flowers grass",
    "positive": "good great love loved excellent happy nice wonderful best amazing perfect",
    "negative": "bad awful hate hated terrible sad poor worst broken angry disappointing",
}
KEYWORDS = {label: frozenset(words.split()) for label, words in _KEYWORD_LISTS.items()}
TEXT_LABELS = (*KEYWORDS, "question")
_LABELS_OF_WORD: dict[str, tuple[str, ...]] = {}
for _label, _words in KEYWORDS.items():
    for _word in _words:
        _LABELS_OF_WORD[_word] = (*_LABELS_OF_WORD.get(_word, ()), _label)

LABELS = IMAGE_LABELS + TEXT_LABELS
"""Every concept the model can predict, in the order of its class-probability tensor."""

_THUMBNAIL = (64, 64)
_HUES = {"red": 0.0, "yellow": 60.0, "green": 120.0, "blue": 240.0}
_WORD = re.compile(r"[a-z']+")
_TEXT_BUCKETS = 256
_IMAGE_FEATURES = len(IMAGE_LABELS) + 12 + 64  # label scores, hue histogram, 8x8 grayscale structure


class UnreadableInput(ValueError):
    """The input's bytes are neither an image Pillow can read nor text."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One input's scores per label (each in [0, 1]) and its embedding (unit length)."""

    scores: dict[str, float]
    embedding: list[float]

    def concepts(self, *, max_concepts: int = 20, min_value: float = 0.0) -> list[dict[str, object]]:
        """Clarifai-style concepts, highest value first (ties by label), ids and names the labels."""
        ranked = sorted(
            ((value, label) for label, value in self.scores.items() if value > 0.0 and value >= min_value),
            key=lambda pair: (-pair[0], pair[1]),
        )
        return [{"id": label, "name": label, "value": value} for value, label in ranked][:max_concepts]

    def probabilities(self) -> list[float]:
        """The scores as class probabilities over :data:`LABELS` (summing to 1)."""
        values = [self.scores.get(label, 0.0) for label in LABELS]
        total = sum(values)
        if total <= 0.0:
            return [1.0 / len(LABELS)] * len(LABELS)
        return [value / total for value in values]


def _projection(rows: int, seed: int) -> np.ndarray:
    """A fixed (seeded, never changing) Gaussian projection to :data:`EMBEDDING_DIMENSIONS`."""
    generator = np.random.default_rng(seed)
    return generator.standard_normal((rows, EMBEDDING_DIMENSIONS)) / math.sqrt(EMBEDDING_DIMENSIONS)


_IMAGE_PROJECTION = _projection(_IMAGE_FEATURES, seed=20261207)
_TEXT_PROJECTION = _projection(_TEXT_BUCKETS, seed=20261208)


def _embed(features: np.ndarray, projection: np.ndarray) -> list[float]:
    vector = features @ projection
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return [0.0] * EMBEDDING_DIMENSIONS
    rounded: list[float] = (vector / norm).round(6).tolist()
    return rounded


def _clip(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


def open_image(data: bytes) -> Image.Image:
    """The image in ``data``, decoded to RGB at thumbnail size (:class:`UnreadableInput` if it is none)."""
    try:
        encoded = Image.open(io.BytesIO(data))
        encoded.draft("RGB", _THUMBNAIL)  # JPEG: decode at a fraction of the size, much faster
        size = encoded.size
        image = encoded.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UnreadableInput(f"not an image Pillow can read ({exc})") from None
    image.thumbnail(_THUMBNAIL)
    image.info["original_size"] = size
    return image


def predict_image(data: bytes) -> Prediction:
    """Concepts and embedding of an encoded image (PNG, JPEG, GIF, WebP...)."""
    image = open_image(data)
    width, height = image.info["original_size"]
    gray = image.convert("L")
    luminance = ImageStat.Stat(gray)
    brightness = luminance.mean[0] / 255.0
    contrast = luminance.stddev[0] / 128.0
    hue, saturation, value = (np.asarray(band, dtype=np.float64) for band in image.convert("HSV").split())
    vivid = (saturation > 60) & (value > 60)
    degrees = hue * (360.0 / 256.0)
    scores = {
        "bright": _clip(brightness),
        "dark": _clip(1.0 - brightness),
        "colorful": _clip(float(saturation.mean()) / 160.0),
        "monochrome": _clip(1.0 - float(saturation.mean()) / 160.0),
        "high-contrast": _clip(contrast),
        "low-contrast": _clip(1.0 - contrast),
        "landscape": _clip(width / height - 1.0),
        "portrait": _clip(height / width - 1.0),
    }
    for name, centre in _HUES.items():
        distance = np.minimum(np.abs(degrees - centre), 360.0 - np.abs(degrees - centre))
        scores[name] = _clip(float((vivid & (distance < 30.0)).mean()) * 2.0)
    edges = ImageStat.Stat(gray.filter(ImageFilter.FIND_EDGES)).mean[0] / 48.0
    scores["detailed"] = _clip(edges)
    scores["smooth"] = _clip(1.0 - edges)

    semantic = np.array([scores[label] for label in IMAGE_LABELS]) - 0.5
    hues = np.bincount((degrees[vivid] // 30.0).astype(np.int64) % 12, minlength=12) / max(1, degrees.size)
    structure = np.asarray(gray.resize((8, 8)), dtype=np.float64).ravel()
    structure -= structure.mean()
    spread = float(np.linalg.norm(structure))
    features = np.concatenate([semantic, hues, structure / spread if spread > 1.0 else np.zeros(64)])
    return Prediction(scores, _embed(features, _IMAGE_PROJECTION))


_HIT_SCORES = [_clip(hits / (hits + 1.0)) for hits in range(256)]
"""A label's score for its keyword count."""


@functools.lru_cache(maxsize=65_536)
def _bucket(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % _TEXT_BUCKETS


def _text_scores(text: str, words: list[str]) -> dict[str, float]:
    hits = dict.fromkeys(KEYWORDS, 0)
    for word in words:
        for label in _LABELS_OF_WORD.get(word, ()):
            hits[label] += 1
    scores = {
        label: _HIT_SCORES[count] if count < len(_HIT_SCORES) else _clip(count / (count + 1.0))
        for label, count in hits.items()
    }
    scores["question"] = 0.9 if "?" in text else 0.0
    return scores


def predict_texts(texts: Sequence[str]) -> list[Prediction]:
    """Concepts (topics and tone by keyword, questions) and embeddings (hashed words) of texts, the embeddings
    computed for the whole batch at once (each the same as the text's alone)."""
    words_of = [_WORD.findall(text.lower()) for text in texts]
    buckets = [_bucket(word) for words in words_of for word in words]
    vectors = np.zeros((len(texts), EMBEDDING_DIMENSIONS))
    if buckets:
        lengths = np.array([len(words) for words in words_of])
        rows = _TEXT_PROJECTION[np.array(buckets)]
        worded = lengths > 0
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[worded]
        vectors[worded] = np.add.reduceat(rows, starts, axis=0)
    norms = np.linalg.norm(vectors, axis=1)
    units = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors), where=norms[:, None] > 0.0)
    embeddings: list[list[float]] = units.round(6).tolist()
    return [
        Prediction(_text_scores(text, words), embedding)
        for text, words, embedding in zip(texts, words_of, embeddings, strict=True)
    ]


def predict_text(text: str) -> Prediction:
    """Concepts (topics and tone by keyword, questions) and embedding (hashed words) of a text."""
    return predict_texts([text])[0]


def predict_bytes(data: bytes) -> Prediction:
    """An image if Pillow reads ``data``, else its text (UTF-8; undecodable bytes replaced)."""
    try:
        return predict_image(data)
    except UnreadableInput:
        return predict_text(data.decode("utf-8", errors="replace"))


def content_id(*parts: str | bytes) -> str:
    """A 32-hex id derived from ``parts``: the same parts, the same id."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()
