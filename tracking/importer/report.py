"""What an import did, per entity: rows imported, skipped (already there, equal) and
conflicting (there but different, or blocked by a conflicting parent), with why."""

from dataclasses import dataclass, field

ENTITIES = (
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "tags",
    "metrics",
    "datasets",
    "inputs",
    "input_tags",
    "logged_models",
    "logged_model_params",
    "logged_model_tags",
    "logged_model_metrics",
    "model_inputs",
    "model_outputs",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
)
SHOWN = 20
"""Reasons listed per entity; the rest are counted."""


@dataclass
class Tally:
    imported: int = 0
    skipped: int = 0
    conflicting: int = 0
    reasons: list[str] = field(default_factory=list)

    def conflict(self, reason: str, count: int = 1) -> None:
        self.conflicting += count
        if len(self.reasons) < SHOWN:
            self.reasons.append(reason)

    def line(self, entity: str, dry_run: bool) -> str:
        verb = "to import" if dry_run else "imported"
        return (
            f"{entity}: {self.imported} {verb}, {self.skipped} skipped (already present), "
            f"{self.conflicting} conflicting"
        )


@dataclass
class Report:
    dry_run: bool = False
    seconds: float = 0.0
    tallies: dict[str, Tally] = field(default_factory=lambda: {e: Tally() for e in ENTITIES})

    def __getitem__(self, entity: str) -> Tally:
        return self.tallies.setdefault(entity, Tally())

    @property
    def conflicting(self) -> int:
        return sum(t.conflicting for t in self.tallies.values())

    @property
    def rows(self) -> int:
        """Rows read from the source (imported, skipped or conflicting)."""
        return sum(t.imported + t.skipped + t.conflicting for t in self.tallies.values())

    def lines(self) -> list[str]:
        out = [tally.line(entity, self.dry_run) for entity, tally in self.tallies.items()]
        rate = self.rows / self.seconds if self.seconds else 0.0
        out.append(f"{self.rows} rows in {self.seconds:.1f} s ({rate:,.0f} rows/s)")
        for entity, tally in self.tallies.items():
            for reason in tally.reasons:
                out.append(f"  conflict ({entity}): {reason}")
            hidden = tally.conflicting - len(tally.reasons)
            if hidden > 0 and tally.reasons:
                out.append(f"  ... and {hidden} more conflicting {entity}")
        return out
