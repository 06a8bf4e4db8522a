"""Practical lessons as multi-seed experiments (numpy, pandas, matplotlib only; no MLflow).

A lesson (`conf/lessons/<name>.yaml`) is a set of arms, each a few dotted config overrides,
run over seeds through `pipeline.stages`, summarized as mean and spread per arm and judged
against the lesson's declarative claim. From a notebook:

    from pipeline.lessons import run_lesson
    result = run_lesson("initialization", seeds=5, workers=2)
    result.table            # DataFrame: <metric>_mean/_std/_min/_max per arm
    result.verdict.line     # "held: ..." or "failed: ..."
    result.figures          # {"lesson/comparison.png": Figure, ...}

spec.py     the lesson file as validated data (load_lesson, available)
plan.py     one Config per (arm, seed): base <- lesson base <- command line <- arm <- seed
execute.py  one (arm, seed) through stages.prepare / stages.train, plus the kind's extras
runner.py   the loop (in-process or spawned workers), LessonResult
table.py    mean and spread per arm; claim.py the verdict; figures.py the comparison figures
"""

from pipeline.lessons.claim import CheckResult, Verdict, judge
from pipeline.lessons.execute import ArmRun, execute
from pipeline.lessons.plan import Job, plan
from pipeline.lessons.runner import LessonResult, run_lesson
from pipeline.lessons.spec import Lesson, available, load_lesson, parse_lesson

__all__ = ["ArmRun", "CheckResult", "Job", "Lesson", "LessonResult", "Verdict", "available",
           "execute", "judge", "load_lesson", "parse_lesson", "plan", "run_lesson"]
