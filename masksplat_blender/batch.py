"""Headless MaskSplat: the same operators as the UI, for pipelines.

    blender -b --python masksplat_blender/batch.py -- <command> ...
    python -m masksplat_blender.batch <command> ...          (with the bpy module)

Exit codes: 0 success, 1 failure, 2 bad input, 130 cancelled (Ctrl-C or SIGTERM); a
failure is one line on stderr (`masksplat: ...`), with the traceback under --debug.
Every output goes through one guard (core.outputs): never an input, an existing one only
with --overwrite, all of a command's outputs checked before the first is written and
published together, so a failure or a cancel leaves the old files or the new ones. This
file is the command line and the exit codes; the commands are in `commands/`. Nothing
here imports drawing code (the gpu module is absent in -b).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130
DEVICES = ("auto", "cpu", "cuda")


def _parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options every command shares, and those of the commands that run the backend."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    common.add_argument("--summary", help="also write the summary as JSON to this file")
    common.add_argument("--debug", action="store_true", help="on a failure, also print the traceback")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--device", default="auto", choices=DEVICES)
    backend.add_argument("--backend-python", metavar="PYTHON",
                         help="the Python with torch that runs the backend (default: as the add-on finds it)")  # fmt: skip
    return common, backend


def _scene_inputs(parser, required: bool = True) -> None:
    parser.add_argument("--ply", required=required, help="the scene's splat file")
    parser.add_argument("--cameras", required=required, help="cameras.json, transforms.json or a COLMAP sparse folder")


def _convert_options(convert) -> None:
    convert.add_argument("--ply", required=True, help="input splat file (.ply, .compressed.ply, .spz, .sog or a SOG meta.json, .splat)")
    convert.add_argument("--out", required=True, help="output splat file; its extension picks the format (.ply, .compressed.ply, .spz)")
    convert.add_argument("--drop-invalid", action="store_true", help="drop Gaussians with NaN/Inf values or a zero rotation")


def _segment_options(seg) -> None:
    seg.add_argument("--masks", help="folder of masks named after the cameras (white = object)")
    seg.add_argument("--out", help="OBJECT.ply: the selected Gaussians")
    seg.add_argument("--rest", help="REST.ply: the other Gaussians")
    seg.add_argument("--beta", type=float, default=1.0, help="select when object votes > beta * background votes (0 to 2)")
    seg.add_argument("--edge-band", type=int, default=0, metavar="PX",
                     help="robust mode for masks off by a few pixels: pixels within PX of a mask edge cast no vote")  # fmt: skip
    seg.add_argument("--no-fill", action="store_true", help="leave Gaussians no view saw unselected (the paper's rule)")
    seg.add_argument("--votes", help="VOTES.npz with float32 fg and bg, one value per input Gaussian")
    seg.add_argument("--save-blend", help="also save the Blender scene")
    seg.add_argument("--jobs", help="JOBS.json: a list of {ply, cameras, masks, out, ...} run in one process")


def _render_options(ren) -> None:
    ren.add_argument("--out", required=True, help="folder for <camera>.png")
    ren.add_argument("--background", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "G", "B"))


def _evaluate_options(ev) -> None:
    ev.add_argument("--ply", required=True, help="OBJECT.ply written by segment")
    ev.add_argument("--scene", required=True, help="the SCENE.ply it was selected from")
    ev.add_argument("--cameras", required=True)
    ev.add_argument("--masks", required=True, help="folder of ground-truth masks named after the cameras")
    ev.add_argument("--report", help="write the report as JSON")


def _prune_options(pr) -> None:
    pr.add_argument("--out", required=True, help="PRUNED.ply")
    pr.add_argument("--criterion", default="zero", help="zero | threshold:X (weight per view pixel) | fraction:F")
    pr.add_argument("--min-psnr", type=float, default=None, metavar="DB", help="with fraction: remove less to keep this PSNR")
    pr.add_argument("--orbit-views", type=int, default=0, metavar="N", help="add N orbit cameras around the object")
    pr.add_argument("--orbit-size", type=int, default=256)
    pr.add_argument("--report", help="REPORT.json")


def _affordance_options(aff) -> None:
    aff.add_argument("--source-image", required=True, action="append", metavar="IMG",
                     help="the annotated image (a photo or a render); repeat for several, each with its --source-labels")
    aff.add_argument("--source-camera", action="append", metavar="NAME",
                     help="the camera IMG was taken from (its labels are then used as is); one per --source-image")
    aff.add_argument("--source-labels", required=True, action="append", metavar="LABELS.png",
                     help="label ids of IMG, single channel, same size (0 = background, 1..K the classes)")
    aff.add_argument("--model", required=True, metavar="PATH_OR_ID", help="DINOv2 folder (safetensors) or id in the local cache")
    aff.add_argument("--cache-dir", help="Hugging Face cache folder to look a model id up in")
    aff.add_argument("--k", type=int, default=5, help="nearest source patches per target patch (default 5)")
    aff.add_argument("--feature-size", type=int, default=448, metavar="PX", help="square input size for DINOv2, a multiple of 14 (the paper: 896)")
    aff.add_argument("--labels-npz", metavar="L.npz", help="int32 labels [N] (-1 unseen) and float32 votes [N, K]")
    aff.add_argument("--out", metavar="LABELED.ply", help="the splats, same properties (with --label-property: plus int32 ms_label last)")
    aff.add_argument("--label-property", action="store_true", help="append ms_label to --out")
    aff.add_argument("--masks-out", metavar="DIR", help="write each camera's transferred label map as <camera>.png (ids)")
    aff.add_argument("--gt-labels", metavar="DIR", help="ground-truth label maps named after the cameras: per-class IoU and recall")
    aff.add_argument("--report", help="write the summary (with the evaluation) as JSON")


# name, help, whether it runs the backend, whether it takes --ply and --cameras (required, or
# optional: segment takes them in --jobs too), its own options
REQUIRED, OPTIONAL = True, False
COMMANDS = (
    ("convert", "import a splat file into Blender and export it again", False, None, _convert_options),
    ("segment", "select the Gaussians that masks show; write OBJECT.ply and REST.ply", True, OPTIONAL, _segment_options),
    ("render", "render the splat from every camera to PNG", True, REQUIRED, _render_options),
    ("evaluate", "mIoU / mAcc of a selection against ground-truth masks", True, None, _evaluate_options),
    ("prune", "remove the Gaussians no view needs, with a quality report", True, REQUIRED, _prune_options),
    ("affordance", "transfer part labels from one annotated image with DINOv2 and lift them to 3D", True, REQUIRED,
     _affordance_options),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masksplat", description="MaskSplat batch commands")
    sub = parser.add_subparsers(dest="command", required=True)
    common, backend = _parents()
    for name, help_text, runs_backend, scene, add_options in COMMANDS:
        command = sub.add_parser(name, parents=[common, backend] if runs_backend else [common], help=help_text)
        if scene is not None:
            _scene_inputs(command, required=scene)
        add_options(command)
    return parser


def run(args) -> dict:
    """Run one command: its outputs are checked first, written aside, then published as a set."""
    from .commands.common import write_json
    from .core.outputs import OutputSet

    if getattr(args, "backend_python", None):
        from .client import BACKEND_PYTHON_ENV

        os.environ[BACKEND_PYTHON_ENV] = args.backend_python  # found first, by the UI's own rule (client.find_backend_python)
    command = importlib.import_module(f"{__package__}.commands.{args.command}")
    with OutputSet(command.inputs(args), overwrite=args.overwrite) as outputs:
        summary_file = outputs.file(args.summary, "--summary") if args.summary else None
        summary = command.run(args, outputs)
        if summary_file is not None:
            write_json(summary_file, summary)
        outputs.publish()
    return summary


def failure(err: BaseException, debug: bool = False) -> int:
    """Print one line for `err` (the traceback before it with --debug) and return its exit code."""
    from .core import errors, interrupts

    signal_name = interrupts.requested()
    outcome = errors.CANCELLED if signal_name else errors.outcome_of(err)
    if debug:
        traceback.print_exception(err)
        if getattr(err, "detail", ""):
            print(err.detail, file=sys.stderr)
    if outcome == errors.CANCELLED:
        message = "cancelled" + (" (terminated)" if signal_name == "SIGTERM" else "")
    else:
        message = errors.one_line(err)
    print(f"masksplat: {message}", file=sys.stderr)
    return errors.EXIT_CODES[outcome]


def main(argv: list[str] | None = None) -> int:
    from .core import interrupts

    interrupts.install()
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_BAD_INPUT if exit_.code else EXIT_OK
    try:
        summary = run(args)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - every failure ends as one line and its exit code
        with interrupts.deferred(reraise=False):  # a second Ctrl-C must not cut the cleanup short
            _stop_backend()
            code = failure(err, args.debug)
    else:
        with interrupts.deferred(reraise=False):  # the outputs are in place: this is a success
            _stop_backend()
            print(json.dumps(summary, indent=2))
            code = EXIT_OK
    interrupts.finish()
    return code


def _stop_backend() -> None:
    client = sys.modules.get(f"{__package__}.client")
    if client is not None:
        client.shutdown_client()


if __name__ == "__main__":
    if not __package__:  # run by file path (blender -b --python .../batch.py): import as a package
        _folder = Path(__file__).resolve().parent
        sys.path.insert(0, str(_folder.parent))
        main = importlib.import_module(f"{_folder.name}.batch").main
    code = main()
    sys.stdout.flush()
    # Under `blender -b --python`, an explicit exit carries the code out of Blender.
    sys.exit(code)
