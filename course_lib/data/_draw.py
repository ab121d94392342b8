"""Pure-numpy drawing for the generated datasets: shapes by signed distance, and backgrounds.

The pixel arithmetic uses only ``+ - * /`` and ``sqrt``, which IEEE 754 rounds the same way on
every machine (no ``sin``/``cos`` on the pixel grid, no anti-aliasing from an imaging library
whose output may change between versions), so a generated image is the same bytes everywhere.
Rotations are drawn as random unit vectors, and the regular polygons' vertices are written with
square roots (``cos 72 deg = (sqrt 5 - 1) / 4``) for the same reason.

Pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``; its centre is ``(col + 0.5, row + 0.5)``.
"""

from __future__ import annotations

import math

import numpy as np

from course_lib.data.photos import TEXTURE_NAMES, load_photo

SHAPE_NAMES = ("circle", "square", "triangle", "star", "ring")
BACKGROUND_KINDS = ("plain", "gradient", "noise", "texture")
BACKGROUND_WEIGHTS = (0.15, 0.2, 0.2, 0.45)

# Unit directions of a regular pentagon, the first pointing up (image y grows downwards).
_S5 = math.sqrt(5.0)
_COS72, _SIN72 = (_S5 - 1.0) / 4.0, math.sqrt(10.0 + 2.0 * _S5) / 4.0
_COS144, _SIN144 = -(_S5 + 1.0) / 4.0, math.sqrt(10.0 - 2.0 * _S5) / 4.0
_PENTAGON = np.array(
    [[0.0, -1.0], [_SIN72, -_COS72], [_SIN144, -_COS144], [-_SIN144, -_COS144], [-_SIN72, -_COS72]]
)
_HALF_SQRT3, _HALF_SQRT2 = math.sqrt(3.0) / 2.0, math.sqrt(0.5)
_TRIANGLE = np.array([[0.0, -1.0], [_HALF_SQRT3, 0.5], [-_HALF_SQRT3, 0.5]])
_SQUARE = np.array([[-_HALF_SQRT2, -_HALF_SQRT2], [_HALF_SQRT2, -_HALF_SQRT2],
                    [_HALF_SQRT2, _HALF_SQRT2], [-_HALF_SQRT2, _HALF_SQRT2]])


def _convex_pieces(kind: str, ratio: float) -> list[np.ndarray]:
    """Convex polygons (unit circumradius, unrotated) whose union is the shape."""
    if kind == "triangle":
        return [_TRIANGLE]
    if kind == "square":
        return [_SQUARE]
    # A five-pointed star is the union of five convex kites: centre, inner vertex, tip, inner
    # vertex. The inner vertex between tips k and k+1 points opposite to tip k+3.
    inner = -ratio * _PENTAGON[[3, 4, 0, 1, 2]]  # (5, 2)
    return [np.stack([np.zeros(2), inner[k - 1], _PENTAGON[k], inner[k]]) for k in range(5)]


def _half_planes(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals ``(E, 2)`` and offsets ``(E,)`` of a convex polygon's edges."""
    edges = np.roll(vertices, -1, axis=0) - vertices  # (E, 2)
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.sqrt((normals**2).sum(axis=1, keepdims=True))
    offsets = (normals * vertices).sum(axis=1)
    # Orient the normals away from the centroid, whatever the winding order.
    flip = (normals * vertices.mean(axis=0)).sum(axis=1) - offsets > 0
    normals[flip], offsets[flip] = -normals[flip], -offsets[flip]
    return normals, offsets


def signed_distance(shape: dict, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) from pixel centres to a shape's outline.

    For polygons this is the largest signed distance to an edge line, exact along the edges and
    slightly less than the Euclidean distance near corners, which is all the soft edge needs.

    Args:
        shape: ``{"kind", "cx", "cy", "radius", "cos", "sin", "ratio"}``; ``radius`` is the
            circumradius, ``(cos, sin)`` the rotation, ``ratio`` the inner/outer radius of a
            ring or star.
        xs: ``[W]`` x coordinates of the pixel centres; ys: ``[H]`` y coordinates.

    Returns:
        ``np.ndarray[H, W]`` float64.
    """
    x = xs[None, :] - shape["cx"]  # (1, W)
    y = ys[:, None] - shape["cy"]  # (H, 1)
    kind, radius = shape["kind"], shape["radius"]
    if kind in ("circle", "ring"):
        distance = np.sqrt(x * x + y * y)  # (H, W)
        if kind == "circle":
            return distance - radius
        return np.maximum(distance - radius, shape["ratio"] * radius - distance)
    cos, sin = shape["cos"], shape["sin"]
    result = None
    for piece in _convex_pieces(kind, shape["ratio"]):
        # Elementwise rotation, not a matmul: BLAS may fuse multiply-adds on some CPUs only.
        vertices = np.stack([piece[:, 0] * cos - piece[:, 1] * sin, piece[:, 0] * sin + piece[:, 1] * cos], 1)
        normals, offsets = _half_planes(radius * vertices)
        piece_distance = x * normals[0, 0] + y * normals[0, 1] - offsets[0]
        for (nx, ny), offset in zip(normals[1:], offsets[1:], strict=True):
            piece_distance = np.maximum(piece_distance, x * nx + y * ny - offset)
        result = piece_distance if result is None else np.minimum(result, piece_distance)
    return result


def random_unit_vector(rng: np.random.Generator) -> tuple[float, float]:
    """A direction uniform on the circle, without trigonometry."""
    while True:
        x, y = rng.normal(size=2)
        norm = math.sqrt(x * x + y * y)
        if norm > 1e-6:
            return x / norm, y / norm


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an ``H x W x C`` image to float32, pixel centres aligned, no antialiasing.

    Rows first, then columns; the gathers run on the input dtype (uint8 photos stay small).
    """

    def coordinates(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
        position = np.clip(position, 0.0, size_in - 1.0)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, size_in - 1)
        return low, high, (position - low).astype(np.float32)

    y0, y1, wy = coordinates(image.shape[0], height)
    wy = wy[:, None, None]
    rows = image[y0].astype(np.float32) * (1 - wy) + image[y1].astype(np.float32) * wy  # (height, W, C)
    x0, x1, wx = coordinates(image.shape[1], width)
    wx = wx[None, :, None]
    return rows[:, x0] * (1 - wx) + rows[:, x1] * wx  # (height, width, C)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a bundled photo, resized, recoloured and softened."""
    photo = load_photo(TEXTURE_NAMES[rng.integers(len(TEXTURE_NAMES))])
    largest = min(photo.shape[0], photo.shape[1], 2 * size)  # zoom from x2 in to x2 out
    side = int(rng.integers(min(size // 2, largest), largest + 1))
    top = int(rng.integers(photo.shape[0] - side + 1))
    left = int(rng.integers(photo.shape[1] - side + 1))
    crop = photo[top : top + side, left : left + side]  # (side, side, 3) uint8
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    texture = resize_bilinear(crop, size, size) / np.float32(255)  # (size, size, 3)
    if rng.random() < 0.5:  # duotone: map grey levels between two random colours
        grey = texture[:, :, :1] * 0.299 + texture[:, :, 1:2] * 0.587 + texture[:, :, 2:] * 0.114
        dark, light = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
        texture = dark + (light - dark) * grey
    else:
        texture = texture[:, :, rng.permutation(3)]
    strength = np.float32(rng.uniform(0.5, 1.0))  # blend towards a plain colour: easier scenes
    return texture * strength + rng.random(3).astype(np.float32) * (1 - strength)


def draw_background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    """Draw one background: ``(image [size, size, 3] float32 in [0, 1], kind)``."""
    kind = BACKGROUND_KINDS[rng.choice(len(BACKGROUND_KINDS), p=BACKGROUND_WEIGHTS)]
    if kind == "texture":
        return _texture(rng, size), kind
    colour = rng.random(3).astype(np.float32)
    image = np.empty((size, size, 3), np.float32)
    image[:] = colour
    if kind == "gradient":
        dx, dy = random_unit_vector(rng)
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        t = centres[None, :] * np.float32(dx) + centres[:, None] * np.float32(dy) + 0.5  # (H, W)
        image += (rng.random(3).astype(np.float32) - colour) * t[:, :, None]
    elif kind == "noise":
        # Blotches (coarse noise, upsampled) plus grain (per-pixel noise).
        cells = int(rng.integers(3, 9))
        coarse = rng.normal(0.0, rng.uniform(0.05, 0.2), (cells, cells, 3)).astype(np.float32)
        image += resize_bilinear(coarse, size, size)
        image += rng.normal(0.0, rng.uniform(0.02, 0.12), (size, size, 3)).astype(np.float32)
    return np.clip(image, 0.0, 1.0), kind
