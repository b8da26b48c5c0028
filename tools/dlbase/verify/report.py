"""The verify summary: test cases folded into rows people read, and the report of a run.

One row per host check (named by its ``check`` marker), one row per in-image test file
(counts, skip reasons) plus a row per failure; the report carries them with the run's
facts and is what `dlbase verify --json` prints and the JSON report file holds.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field

from dlbase.verify.junit import Case, strip_param

#: The two halves of a run, in the order they run (also what ``--only`` accepts).
ONLY = ("host", "image")

# In-image test files -> the check people read in the summary.
_FILE_CHECKS = {
    "test_versions": "versions",
    "test_gpu": "GPU",
    "test_dataloader": "DataLoader",
    "test_ddp": "DDP",
    "test_seed_pipelines": "augmentation: seed pipelines",
}


@dataclass
class Row:
    """One line of the summary table (and of the JSON report)."""

    half: str  # host | image
    check: str
    result: str  # passed | failed | skipped | error
    seconds: float
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    detail: bool = False  # a failure listed under its file's row

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VerifyReport:
    image: str
    image_id: str
    variant: str | None
    flavor: str | None
    passed: bool
    partial: bool
    require_gpu: bool
    gpus: bool
    shm: str
    rows: list[Row]
    seconds: float
    started_at: str
    junit_file: str | None = None
    report_file: str | None = None
    record_file: str | None = None
    host_exit: int | None = None
    image_exit: int | None = None
    suites: dict[str, dict] = field(default_factory=dict)  # the suites that ran -> their digests
    host: dict | None = None  # this host's facts, taken when verify ran

    @property
    def failed_checks(self) -> list[str]:
        return [r.check for r in self.rows if r.result in ("failed", "error") and not r.detail]

    @property
    def passed_checks(self) -> list[str]:
        return [r.check for r in self.rows if r.result == "passed" and not r.detail]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for half in ONLY:
            c: Counter[str] = Counter()
            for row in self.rows:
                if row.half != half or row.detail:
                    continue
                if row.counts:
                    c.update(row.counts)
                else:
                    c[row.result] += 1
            out[half] = dict(c)
        return out

    def to_dict(self) -> dict:
        return {"kind": "dlbase.verify", "ok": self.passed, "image": self.image, "image_id": self.image_id,
                "variant": self.variant, "flavor": self.flavor, "passed": self.passed, "partial": self.partial,
                "require_gpu": self.require_gpu, "gpus": self.gpus, "shm": self.shm,
                "started_at": self.started_at, "seconds": self.seconds, "counts": self.counts(),
                "failed_checks": self.failed_checks, "checks": [r.to_dict() for r in self.rows],
                "junit_file": self.junit_file, "report_file": self.report_file,
                "record_file": self.record_file, "host_exit": self.host_exit, "image_exit": self.image_exit,
                "suites": self.suites, "host": self.host}


def _file_check(file: str) -> str:
    stem = file.removesuffix(".py")
    if stem in _FILE_CHECKS:
        return _FILE_CHECKS[stem]
    if stem.startswith("test_aug_"):
        return "augmentation: " + stem.removeprefix("test_aug_").replace("_", " ")
    return stem.removeprefix("test_").replace("_", " ")


def host_rows(cases: list[Case], check_names: dict[str, str]) -> list[Row]:
    """One row per host check (a testinfra test), named by its ``check`` marker."""
    rows = []
    for case in cases:
        check = check_names.get(strip_param(case.name)) or strip_param(case.name)
        result = "skipped" if case.outcome in ("skipped", "xfailed") else case.outcome
        rows.append(Row(half="host", check=check, result=result, seconds=round(case.seconds, 2),
                        reason=case.message if result != "passed" else "",
                        failures=[{"test": case.nodeid, "message": case.message}]
                        if result in ("failed", "error") else []))
    return rows


def image_rows(cases: list[Case]) -> list[Row]:
    """One row per in-image test file (counts, skip reasons), then one row per failure."""
    by_file: OrderedDict[str, list[Case]] = OrderedDict()
    for case in cases:
        by_file.setdefault(case.file, []).append(case)
    rows: list[Row] = []
    for file, group in by_file.items():
        counts = Counter(c.outcome for c in group)
        failed = [c for c in group if c.outcome in ("failed", "error")]
        skipped = [c for c in group if c.outcome == "skipped"]
        if failed:
            result = "failed"
        elif counts.get("passed", 0) or counts.get("xfailed", 0):
            result = "passed"
        else:
            result = "skipped"
        parts = [f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: _ORDER.get(kv[0], 9))]
        reasons = Counter(c.message for c in skipped)
        if len(reasons) == 1:
            reason_text = f"skipped: {next(iter(reasons))}"
        else:
            reason_text = "; ".join(f"{n} skipped: {msg}" for msg, n in reasons.most_common())
        rows.append(Row(half="image", check=f"{_file_check(file)} ({file})", result=result,
                        seconds=round(sum(c.seconds for c in group), 2),
                        reason=f"{', '.join(parts)}" + (f" - {reason_text}" if reason_text else ""),
                        counts=dict(counts),
                        failures=[{"test": c.nodeid, "message": c.message} for c in failed]))
        for c in failed:
            rows.append(Row(half="image", check=f"  x {c.nodeid}", result=c.outcome, seconds=round(c.seconds, 2),
                            reason=c.message, detail=True))
    return rows


_ORDER = {"passed": 0, "failed": 1, "error": 2, "skipped": 3, "xfailed": 4}
