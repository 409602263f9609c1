"""``tts-nb lr-plan`` (notebook 04): when a scheduler config really changes the LR in a Coqui run, per step or
per epoch, with gradient accumulation and the installed trainer version's own behaviour.

Exit status: 0 when the planned LR moves and every milestone lies within the run; 1 when the LR never changes
or a milestone lies beyond the run; 2 for a usage error (bad JSON, unknown scheduler, parameters it rejects)."""

from __future__ import annotations

import argparse
import json
import math

from ..errors import UsageError
from ..io import wrap_text
from ._common import check_outputs, positive_float, positive_int


def _no_constant(name: str):
    """``parse_constant`` for --params: NaN and Infinity are not values a scheduler can use."""
    raise UsageError(f"--params holds {name}: give finite numbers (a NaN milestone or gamma is never reached)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _no_constant(text)
    return value


def _cmd_lr_plan(args: argparse.Namespace) -> int:
    from ..schedules.plan import INSTALLED, format_lr_plan, lr_plan
    from ..schedules.trace import ScheduleConfigError, plot_lr_traces

    check_outputs([], plot=args.plot)
    try:
        params = json.loads(args.params, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise UsageError(f"--params is not valid JSON ({e}): give an object such as '{{\"milestones\": [60, 80]}}'") from None
    if not isinstance(params, dict):
        raise UsageError(f"--params must be a JSON object of keyword arguments, got {type(params).__name__}")
    if min(args.batches_per_epoch, args.epochs, args.grad_accum, args.optimizers) < 1:
        raise UsageError("--batches-per-epoch, --epochs, --grad-accum and --optimizers must be at least 1")
    if not args.lr > 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    version = None if args.trainer_version == "none" else args.trainer_version or INSTALLED
    try:
        plan = lr_plan(args.scheduler, params, args.lr, args.batches_per_epoch, args.epochs, args.after_epoch is not False,
                       grad_accum=args.grad_accum, trainer_version=version, optimizers=args.optimizers,
                       model_optimize=args.model_optimize)
    except ScheduleConfigError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:  # a --trainer-version that is not a version number
        raise UsageError(f"--trainer-version: {e}") from None
    if args.plot:
        traces = [plan.trace] + ([plan.intended] if plan.intended is not None else [])
        plot_lr_traces(traces, path=args.plot, title=f"{args.scheduler} {json.dumps(params)}"[:90])
    if args.json:
        print(json.dumps(plan.as_json(), indent=2))
    else:
        text = format_lr_plan(plan, detail=True)
        print(wrap_text(text, 110, break_long_words=True, break_on_hyphens=True))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0 if plan.moves else 1


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lr-plan",
        help="show when a scheduler config actually changes the LR in a Coqui run (per step or per epoch)",
        description="Step a real LR scheduler (torch.optim.lr_scheduler or the Coqui trainer's StepwiseGradualLR, "
        "NoamLR; names matched as the trainer's get_scheduler does) on a dummy optimizer as the Coqui trainer "
        "would, and print each LR change at its GLOBAL_STEP (batches, as the trainer logs) and optimizer step. "
        "Plans per epoch unless --per-step is given, as the trainer steps a config that keeps its default "
        "scheduler_after_epoch=True. Warns when a milestone lies beyond the run and when the installed trainer "
        "would not step a per-epoch scheduler. Exit 0 when the LR moves as planned, 1 when it never changes or a "
        "milestone lies beyond the run, 2 for an unknown scheduler, bad JSON or parameters the class rejects.",
    )
    p.add_argument("--scheduler", required=True, metavar="NAME", help="class name, e.g. MultiStepLR, StepwiseGradualLR")
    p.add_argument("--params", default="{}", metavar="JSON",
                   help='keyword arguments as JSON, e.g. \'{"gradual_learning_rates": [[0, 5e-4], [10000, 4e-4]]}\'')
    p.add_argument("--lr", type=positive_float, required=True, metavar="BASE", help="the optimizer's learning rate")
    p.add_argument("--batches-per-epoch", "--steps-per-epoch", dest="batches_per_epoch", type=positive_int, required=True,
                   metavar="N", help="batches per epoch, len(train_loader) (optimizer steps when --grad-accum is 1)")
    p.add_argument("--epochs", type=positive_int, required=True, metavar="E", help="epochs in the run")
    p.add_argument("--grad-accum", type=positive_int, default=1, metavar="A",
                   help="gradient accumulation (TrainerArgs.grad_accum_steps): batches per optimizer step")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--after-epoch", dest="after_epoch", action="store_true", default=None,
                      help="the scheduler is stepped once per epoch (scheduler_after_epoch=True, TrainerConfig's "
                      "default, and lr-plan's); the plan says what the trainer version really does")
    when.add_argument("--per-step", dest="after_epoch", action="store_false",
                      help="the scheduler is stepped after every optimizer step (scheduler_after_epoch=False)")
    p.add_argument("--trainer-version", metavar="V",
                   help="coqui-tts-trainer version to plan for (default: the installed one; 'none': as configured)")
    p.add_argument("--optimizers", type=positive_int, default=1, metavar="K", help="optimizers the model uses (default 1)")
    p.add_argument("--model-optimize", action="store_true", help="the model implements its own optimize()")
    p.add_argument("--json", action="store_true",
                   help='print {"changes": [{"global_step", "optimizer_step", "epoch", "lr"}], "warnings": [...]}')
    p.add_argument("--plot", metavar="FILE", help="also write a plot of LR per step (PNG or SVG), atomically")
    p.set_defaults(func=_cmd_lr_plan)
