"""The ``ensemble`` strategy: nothing new trains; finished runs (``ensemble_members``) score together, their
predictions averaged (scores; probabilities for classification), with equal weights or weights fitted on the dev
split (``ensemble_weights: dev``). Its run kind (:mod:`hf_tl.runs.ensemble`) copies the members into the run
directory, so the ensemble loads, predicts and pushes as one run."""

from __future__ import annotations

from torch import nn

from hf_tl.errors import HfTlError
from hf_tl.strategies.base import Strategy, register

ENSEMBLE = "ensemble"  # the run kind
WEIGHTINGS = ("equal", "dev")


@register("ensemble")
class Ensemble(Strategy):
    """Average the predictions of finished runs (see the module docstring)."""

    run_kind = ENSEMBLE
    learns = False
    multitask = False
    trains_backbone_weights = False
    resumable = False
    resume_refusal = "averages finished runs, so there is nothing to resume; drop --resume_from_checkpoint"
    transferable = False
    transfer_refusal = "is several models; start from the backbone of one of its members instead"
    own_options = ("ensemble_members", "ensemble_weights")

    @classmethod
    def check_args(cls, args) -> None:
        super().check_args(args)
        if not args.ensemble_members or len(args.ensemble_members) < 1:
            raise HfTlError("strategy ensemble needs ensemble_members: the finished runs to average (hf-tl ensemble "
                            "RUN RUN ... --output_dir DIR).")
        if args.ensemble_weights is not None and args.ensemble_weights not in WEIGHTINGS:
            raise HfTlError(f"ensemble_weights must be one of {', '.join(WEIGHTINGS)}, got "
                            f"'{args.ensemble_weights}'.")

    def apply(self, model: nn.Module) -> nn.Module:
        raise HfTlError("strategy ensemble builds no model of its own; its members are finished runs.")

    def describe(self) -> str:
        members = self.args.ensemble_members or []
        weights = self.args.ensemble_weights or "equal"
        return (f"ensemble: the averaged predictions of {len(members)} finished runs ({weights} weights); nothing "
                f"trains")


def ensemble_flags(runs: list, weights: str = "equal") -> list[str]:
    """The run flags that make an ensemble of ``runs`` (what ``hf-tl ensemble`` and ``hf_tl.make_ensemble`` pass)."""
    return ["--strategy", Ensemble.name, "--ensemble_members", *map(str, runs), "--ensemble_weights", weights]
