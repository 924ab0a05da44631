"""Results are data: one CheckResult per check, one Report per graded submission."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["pass", "fail", "error", "skip"]
SCHEMA = 1


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    points: float
    max_points: float
    message: str = ""
    hint: str = ""


@dataclass
class Report:
    exercise: str
    submission: str
    checks: list[CheckResult]
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    # Tail of the log of each task that failed, for the text report.
    task_logs: dict[str, str] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 2)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 2)

    @property
    def status(self) -> Literal["pass", "fail"]:
        """`pass` only when every check that carries points passed; advice never counts."""
        graded = [c for c in self.checks if c.max_points > 0]
        return "pass" if graded and all(c.status == "pass" for c in graded) else "fail"

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        """The report ``to_dict`` wrote (task logs are not part of it)."""
        return cls(exercise=data["exercise"], submission=data["submission"],
                   checks=[CheckResult(**c) for c in data["checks"]],
                   duration_s=data.get("duration_s", 0.0), notes=data.get("notes", []))

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA, "exercise": self.exercise, "submission": self.submission,
            "status": self.status, "score": self.score, "max_score": self.max_score,
            "duration_s": round(self.duration_s, 2),
            "checks": [asdict(c) for c in self.checks],
            "notes": self.notes,
        }
