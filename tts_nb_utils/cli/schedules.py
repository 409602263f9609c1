"""``tts-nb lr-plan`` (notebook 04): when a scheduler config really changes the LR, per step or per epoch."""

from __future__ import annotations

import argparse
import json

from ..errors import UsageError


def _cmd_lr_plan(args: argparse.Namespace) -> int:
    from ..schedules.trace import ScheduleConfigError, format_lr_plan, lr_plan, plot_lr_traces

    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        raise UsageError(f"--params is not valid JSON ({e}): give an object such as '{{\"milestones\": [60, 80]}}'") from None
    if not isinstance(params, dict):
        raise UsageError(f"--params must be a JSON object of keyword arguments, got {type(params).__name__}")
    if args.steps_per_epoch < 1 or args.epochs < 1:
        raise UsageError("--steps-per-epoch and --epochs must be at least 1")
    if not args.lr > 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    try:
        plan = lr_plan(args.scheduler, params, args.lr, args.steps_per_epoch, args.epochs, args.after_epoch)
    except ScheduleConfigError as e:
        raise UsageError(str(e)) from None
    if args.plot:
        plot_lr_traces([plan["trace"]], path=args.plot, title=f"{args.scheduler} {json.dumps(params)}"[:90])
    if args.json:
        print(json.dumps({"changes": plan["changes"], "warnings": plan["warnings"]}, indent=2))
    else:
        print(format_lr_plan(plan))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lr-plan",
        help="show when a scheduler config actually changes the LR (per step or per epoch)",
        description="Step a real LR scheduler (torch.optim.lr_scheduler or the Coqui trainer's StepwiseGradualLR, "
        "NoamLR) on a dummy optimizer and print the optimizer steps at which the LR changes. Warns when a "
        "milestone lies beyond the run. Exit 2 for an unknown scheduler, bad JSON or parameters the class rejects.",
    )
    p.add_argument("--scheduler", required=True, metavar="NAME", help="class name, e.g. MultiStepLR, StepwiseGradualLR")
    p.add_argument("--params", default="{}", metavar="JSON",
                   help='keyword arguments as JSON, e.g. \'{"gradual_learning_rates": [[0, 5e-4], [10000, 4e-4]]}\'')
    p.add_argument("--lr", type=float, required=True, metavar="BASE", help="the optimizer's learning rate")
    p.add_argument("--steps-per-epoch", type=int, required=True, metavar="N", help="optimizer steps per epoch")
    p.add_argument("--epochs", type=int, required=True, metavar="E", help="epochs in the run")
    p.add_argument("--after-epoch", action="store_true",
                   help="step the scheduler once per epoch (Coqui scheduler_after_epoch=True, its default)")
    p.add_argument("--json", action="store_true", help='print {"changes": [{"step", "lr"}], "warnings": [...]}')
    p.add_argument("--plot", metavar="FILE", help="also write a plot of LR per step (PNG or SVG), atomically")
    p.set_defaults(func=_cmd_lr_plan)
