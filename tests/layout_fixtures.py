"""Small fixtures of each public format, written from synthetic faces (tiny images, a few samples).

The 68 synthetic points are resampled along their order to K points: a fixture of the *format*
(field counts, files, arrays), not of the real layout's semantics.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lightmark.data.synth import SynthFaces


def faces(n: int, size: int = 64, seed: int = 5) -> list:
    gen = SynthFaces(size=size, seed=seed)
    return [gen.render(i) for i in range(n)]


def resample(points: np.ndarray, k: int) -> np.ndarray:
    t = np.linspace(0, len(points) - 1, k)
    idx = np.arange(len(points))
    return np.stack([np.interp(t, idx, points[:, 0]), np.interp(t, idx, points[:, 1])], 1).astype(np.float32)


def write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def wflw_line(points: np.ndarray, name: str, flags=(0, 0, 0, 0, 0, 0)) -> str:
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    fields = [f"{v:.3f}" for v in points.reshape(-1)] + [str(int(v)) for v in (x0, y0, x1, y1)]
    return " ".join([*fields, *map(str, flags), name])


def write_wflw(root: Path, n: int = 24, size: int = 64) -> tuple[Path, list[np.ndarray]]:
    """root/images/<i>.png and root/list_98pt.txt (image paths relative to root); the
    i-th sample has the pose flag when i is even. Returns (list path, 98-point arrays)."""
    lines, points = [], []
    for i, face in enumerate(faces(n, size)):
        name = f"images/{i:03d}.png"
        write_image(root / name, face.image)
        p = resample(face.points, 98)
        points.append(p)
        lines.append(wflw_line(p, name, flags=(int(i % 2 == 0), 0, 0, 0, int(i % 3 == 0), 0)))
    path = root / "list_98pt.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, points


def write_cofw(path: Path, n: int = 24, size: int = 64, names: tuple[str, str] = ("IsT", "phisT"),
               grey: bool = True) -> list[np.ndarray]:
    """A COFW-style .mat: images (grey when `grey`) in a cell array, phis rows of 29 x, 29 y
    (1-based) and 29 occlusion flags. Returns the 0-based 29-point arrays."""
    import scipy.io

    cells = np.empty((n, 1), dtype=object)
    phis, points = [], []
    for i, face in enumerate(faces(n, size)):
        cells[i, 0] = cv2.cvtColor(face.image, cv2.COLOR_RGB2GRAY) if grey else face.image
        p = resample(face.points, 29)
        points.append(p)
        occluded = (np.arange(29) == i % 29).astype(float)
        phis.append(np.concatenate([p[:, 0] + 1, p[:, 1] + 1, occluded]))
    scipy.io.savemat(str(path), {names[0]: cells, names[1]: np.array(phis)})
    return points


def write_facesynthetics(root: Path, n: int = 6, size: int = 64) -> list[np.ndarray]:
    """root/000000.png + root/000000_ldmks.txt (70 rows: the 68 points and two pupils)."""
    points = []
    for i, face in enumerate(faces(n, size)):
        write_image(root / f"{i:06d}.png", face.image)
        pupils = np.stack([face.points[36:42].mean(0), face.points[42:48].mean(0)])
        p = np.concatenate([face.points, pupils]).astype(np.float32)
        points.append(p)
        (root / f"{i:06d}_ldmks.txt").write_text("".join(f"{x:.4f} {y:.4f}\n" for x, y in p))
    return points
