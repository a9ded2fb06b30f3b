"""The conformance matrix (backend × check) as Markdown, JSON and a PNG heat-map.

Input is what the kit's pytest plugin records for each check: its row (the backend), the check's name,
"pass", "fail" or "skip", and for the last two the first line of the reason (for a token mismatch, the
first differing token); how long the check took, and the dtype the engine computed in. Time is reported
beside the outcomes, never as one: it depends on the machine and on its load.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Matrix", "write_reports"]

#: Every check, in the order the suite runs them and the matrix shows them.
CHECK_ORDER = (
    "greedy_ids_match_reference",
    "stop_tokens_end_generation",
    "max_tokens_gives_length",
    "seed_reproduces_sampled_reply",
    "streaming_equals_non_streaming",
    "concurrent_equals_sequential",
    "reasoning_and_content_split",
    "weather_tool_call_arguments",
    "tool_result_then_final_answer",
    "multi_turn_prompt_ids_and_reply",
    "python_flow_runs_statefully_in_the_sandbox",
    "browser_flow_searches_opens_and_cites",
    "json_schema_output",
    "logprobs_returned",
    "context_length_error",
    "invalid_sampling_values_rejected",
)
_SYMBOL = {"pass": "✅ pass", "fail": "❌ fail", "skip": "➖ skip"}


@dataclass
class Matrix:
    """Outcomes by row (backend) and check; `cells[row][check] = (outcome, message)`."""

    cells: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    #: How long each check took, apart from whether it passed: `seconds[row][check]`.
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The dtype each row's engine computed in, as it reports it.
    dtypes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_results(cls, results: Sequence[dict[str, Any]]) -> Matrix:
        """From the plugin's records (`row`, `check`, `outcome`, `message`, and `seconds`, `dtype` if known)."""
        matrix = cls()
        for record in results:
            row, check = record["row"], record["check"]
            matrix.cells.setdefault(row, {})[check] = (record["outcome"], record["message"])
            matrix.seconds.setdefault(row, {})[check] = float(record.get("seconds", 0.0))
            if record.get("dtype"):
                matrix.dtypes[row] = record["dtype"]
        return matrix

    @property
    def rows(self) -> list[str]:
        return list(self.cells)

    @property
    def checks(self) -> list[str]:
        seen = {check for row in self.cells.values() for check in row}
        return [c for c in CHECK_ORDER if c in seen] + sorted(seen - set(CHECK_ORDER))

    @property
    def failures(self) -> int:
        return sum(outcome == "fail" for row in self.cells.values() for outcome, _ in row.values())

    def to_json(self) -> dict:
        return {
            "checks": self.checks,
            "rows": {
                row: {check: {"outcome": o, "message": m} for check, (o, m) in cells.items()}
                for row, cells in self.cells.items()
            },
            "failures": self.failures,
            "dtypes": self.dtypes,
            "seconds": self.seconds,
        }

    def to_markdown(self) -> str:
        """A table with backends as columns (there are fewer of them) and a note per failure or skip."""
        rows, checks = self.rows, self.checks
        lines = [
            "| check | " + " | ".join(f"`{row}`" for row in rows) + " |",
            "|---|" + "---|" * len(rows),
        ]
        if self.dtypes:
            lines.append("| *engine dtype* | " + " | ".join(self.dtypes.get(row, "") for row in rows) + " |")
        for check in checks:
            cells = [_SYMBOL.get(self.cells[row].get(check, ("", ""))[0], "not run") for row in rows]
            lines.append(f"| {check.replace('_', ' ')} | " + " | ".join(cells) + " |")
        notes = [
            f"- `{row}` · {check.replace('_', ' ')}: {outcome}: {message}"
            for row in rows
            for check in checks
            for outcome, message in [self.cells[row].get(check, ("", ""))]
            if outcome in ("fail", "skip") and message
        ]
        times = [self._time_note(row) for row in rows if self.seconds.get(row)]
        return "\n".join(lines + (["", *notes] if notes else []) + (["", *times] if times else [])) + "\n"

    def _time_note(self, row: str) -> str:
        """How long `row`'s checks took (time is reported apart from the outcomes: it depends on the machine)."""
        seconds = self.seconds[row]
        slowest = max(seconds, key=seconds.__getitem__)
        return (
            f"- `{row}`: {len(seconds)} checks in {sum(seconds.values()):.1f} s; the longest, "
            f"{slowest.replace('_', ' ')}, {seconds[slowest]:.1f} s"
        )

    def to_png(self, path: Path) -> None:
        """A heat-map: green pass, red fail, grey skip."""
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        rows, checks = self.rows, self.checks
        code = {"skip": 0, "pass": 1, "fail": 2}
        grid = [[code.get(self.cells[row].get(check, ("skip", ""))[0], 0) for row in rows] for check in checks]
        figure, axes = plt.subplots(figsize=(2.0 + 1.3 * len(rows), 0.45 * len(checks) + 1.2))
        axes.imshow(grid, cmap=ListedColormap(["#d0d0d0", "#3fa34d", "#d64545"]), vmin=0, vmax=2, aspect="auto")
        axes.set_xticks(range(len(rows)), rows, rotation=30, ha="right")
        axes.set_yticks(range(len(checks)), [c.replace("_", " ") for c in checks])
        for y, line in enumerate(grid):
            for x, value in enumerate(line):
                axes.text(x, y, ("skip", "pass", "fail")[value], ha="center", va="center", fontsize=8, color="white")
        axes.set_title("gptoss_hub conformance")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)


def write_reports(results: Sequence[dict[str, Any]], markdown_path: Path, note: str | None = None) -> Matrix:
    """Write `markdown_path` (with `note`, how the run was made, below the matrix) and, beside it, the same
    matrix as `.json` and `.png`; returns the matrix."""
    matrix = Matrix.from_results(results)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)  # `--report out/conformance.md` on a fresh checkout
    markdown_path.write_text(matrix.to_markdown() + (f"\n{note}\n" if note else ""))
    markdown_path.with_suffix(".json").write_text(json.dumps(matrix.to_json(), indent=2) + "\n")
    matrix.to_png(markdown_path.with_suffix(".png"))
    return matrix
