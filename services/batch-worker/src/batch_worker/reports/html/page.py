"""The HTML report's page: its template, style and script (files in reports/templates), and its policy."""

from __future__ import annotations

from importlib.resources import files
from typing import Final

import jinja2
from markupsafe import Markup

from batch_worker.reports.html.comparison import comparison_section
from batch_worker.reports.html.distribution import bar_charts, histograms, numeric_rows, shape_rows
from batch_worker.reports.html.formatting import count
from batch_worker.reports.html.overview import failed_rows, known_inputs, what_ran
from batch_worker.reports.html.review import review_section
from batch_worker.reports.html.scores import scores_section
from batch_worker.reports.scoring import Scoring
from batch_worker.reports.statistics import Summary
from onepipe import PipelineInfo
from onepipe.platform.http.html_policy import content_policy
from onepipe.platform.jobs.types import JobMeta
from onepipe.platform.schema.sample import SAMPLE_SIZE

_TEMPLATES: Final = files("batch_worker.reports") / "templates"
# inlined exactly as the files hold them: the policy names these texts by their hash
STYLE: Final = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
SCRIPT: Final = (_TEMPLATES / "report.js").read_text(encoding="utf-8")

# The page runs its own style and script only, wherever it is opened (served, or a saved file):
# whatever a cell might smuggle in is inert, and nothing is fetched from anywhere.
POLICY: Final = content_policy(STYLE, SCRIPT)

_PAGE: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("batch_worker.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
).get_template("report.html.j2")


def render_html(summary: Summary, scoring: Scoring, meta: JobMeta, info: PipelineInfo) -> str:
    """The report as one self-contained HTML page: inline SVG charts, no network; one inline script
    filters the review list, and the page reads whole without it."""
    summary.finish()
    return _PAGE.render(
        style=Markup(STYLE),
        script=Markup(SCRIPT),
        policy=POLICY,
        ran=what_ran(summary, meta, info),
        variants=summary.named,
        input_columns=summary.input_columns,
        charts=bar_charts(summary),
        numeric=numeric_rows(summary),
        sampled=any(n.sampled for by_variant in summary.numeric.values() for n in by_variant.values()),
        sample_size=count(SAMPLE_SIZE),
        shapes=shape_rows(summary),
        histograms=histograms(summary),
        review=review_section(summary),
        failed=failed_rows(summary),
        comparison=comparison_section(summary),
        scores=scores_section(scoring),
        known=known_inputs(summary),
        confidence_field=summary.confidence_field,
        # the command that turns the wrong rows into edge cases, for a job scored against a truth
        case_job=meta.id if meta.spec.truth else None,
    )
