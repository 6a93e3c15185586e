"""The HTML report for people: a page from the template in reports/templates, and its sections.

The parts: `page` (template, style, script, policy), the sections' data (`overview`, `scores`,
`distribution`, `review`, `comparison`), and `formatting` (how figures are written).
"""

from batch_worker.reports.html.page import POLICY, render_html

__all__ = ["POLICY", "render_html"]
