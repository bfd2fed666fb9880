"""Whether a newly trained version should serve, decided on the same data for both models.

A candidate and the serving model are compared on the same MNIST test images and, when the run
learned from users' digits, on the same held-out slice of those digits: a model that reads users'
photos better may lose a little on MNIST (up to the tolerance), and one that reads them worse
is never promoted however well it does on MNIST. The users' slice is small (a fifth of the users'
digits), so two models often read it equally well; then the one surer of the right digits (lower
cross-entropy) reads it better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mnist_engine.settings import DEFAULT_PROMOTION_TOLERANCE


@dataclass(frozen=True)
class Scores:
    """How one model did on the comparison data: MNIST test accuracy, and on the users' slice."""

    mnist_accuracy: float
    users_accuracy: float | None = None
    users_loss: float | None = None  # mean cross-entropy of the true digits on the users' slice


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate model should serve, and why, in words fit for an admin."""

    promote: bool
    reason: str
    candidate: Scores
    current: Scores | None

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as a JSON-ready dict."""
        return asdict(self)


def decide_promotion(
    candidate: Scores, current: Scores | None, tolerance: float = DEFAULT_PROMOTION_TOLERANCE
) -> PromotionDecision:
    """Apply the promotion rule to two models' scores on the same data."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if current is None:
        return PromotionDecision(True, "no model is serving yet", candidate, None)
    mnist = (
        f"MNIST {candidate.mnist_accuracy:.2%} vs current {current.mnist_accuracy:.2%}, "
        f"tolerance {tolerance:.2%}"
    )
    if candidate.mnist_accuracy < current.mnist_accuracy - tolerance:
        return PromotionDecision(False, f"MNIST test accuracy dropped too far ({mnist})", candidate, current)
    if candidate.users_accuracy is None or current.users_accuracy is None:
        verdict = (
            "better than" if candidate.mnist_accuracy > current.mnist_accuracy else "within tolerance of"
        )
        return PromotionDecision(
            True, f"MNIST test accuracy {verdict} the current model's ({mnist})", candidate, current
        )
    users = f"users' digits {candidate.users_accuracy:.2%} vs current {current.users_accuracy:.2%}"
    if candidate.users_accuracy > current.users_accuracy:
        return PromotionDecision(True, f"reads users' digits better ({users}; {mnist})", candidate, current)
    if candidate.users_accuracy == current.users_accuracy:
        if (
            candidate.users_loss is not None
            and current.users_loss is not None
            and candidate.users_loss < current.users_loss
        ):
            surer = f"loss {candidate.users_loss:.3f} vs current {current.users_loss:.3f}"
            return PromotionDecision(
                True,
                f"reads users' digits as well and more surely ({users}, {surer}; {mnist})",
                candidate,
                current,
            )
        if candidate.mnist_accuracy > current.mnist_accuracy:
            return PromotionDecision(
                True, f"reads users' digits as well and MNIST better ({users}; {mnist})", candidate, current
            )
    return PromotionDecision(
        False, f"does not read users' digits better ({users}; {mnist})", candidate, current
    )
