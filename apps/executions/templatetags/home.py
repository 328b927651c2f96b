"""The admin home page's panel of runs, failures, slow flows, the queue and health."""

from django import template
from django.urls import reverse
from django.utils import timezone

from apps.executions import home as home_selectors
from apps.executions.admin import STATUS_COLOURS
from apps.executions.models import Execution

register = template.Library()
CHART_HEIGHT = 120
BAR_WIDTH = 44
BAR_GAP = 16


def _bars(home: home_selectors.Home) -> list[dict]:
    """A stacked bar per day: its segments (status, count, colour, y, height), bottom up."""
    scale = CHART_HEIGHT / home.busiest_day
    bars = []
    for index, (day, counts) in enumerate(home.days):
        y, segments = CHART_HEIGHT, []
        for status, count in counts.items():
            if not count:
                continue
            height = max(1.0, count * scale)
            y -= height
            segments.append(
                {
                    "status": Execution.Status(status).label,
                    "count": count,
                    "colour": STATUS_COLOURS.get(status, "#999"),
                    "y": round(y, 1),
                    "height": round(height, 1),
                }
            )
        bars.append(
            {
                "x": index * (BAR_WIDTH + BAR_GAP),
                "label": day.strftime("%a %d"),
                "total": sum(counts.values()),
                "top": int(y),
                "segments": segments,
            }
        )
    return bars


@register.inclusion_tag("admin/executions/home.html")
def home_panel():
    home = home_selectors.home()
    statuses = [
        {
            "status": status,
            "label": label,
            "colour": STATUS_COLOURS.get(status, "#999"),
            "day": home.last_day[status],
            "week": home.last_week[status],
        }
        for status, label in Execution.Status.choices
    ]
    waited = timezone.now() - home.oldest_queued if home.oldest_queued else None
    return {
        "home": home,
        "statuses": statuses,
        "bars": _bars(home),
        "chart": {
            "height": CHART_HEIGHT,
            "width": 7 * (BAR_WIDTH + BAR_GAP),
            "bar": BAR_WIDTH,
        },
        "waited_seconds": int(waited.total_seconds()) if waited else None,
        "failures": [(run, home_selectors.run_url(run)) for run in home.failures],
        "slowest": [
            {
                "name": row["flow_name"],
                "url": reverse("admin:flows_flow_change", args=[row["flow_id"]]),
                "average_ms": row["average"].total_seconds() * 1000,
                "longest_ms": row["longest"].total_seconds() * 1000,
                "runs": row["runs"],
            }
            for row in home.slowest
        ],
        "apis": [
            {
                "flow": flow,
                "url": reverse("admin:flows_flow_change", args=[flow.pk]),
                "route": f"{flow.api_method} /api/resources{flow.api_path}"
                if flow.api_path
                else "",
            }
            for flow in home.apis
        ],
    }
