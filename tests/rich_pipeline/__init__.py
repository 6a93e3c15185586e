"""A richer test pipeline, unlike the example: a support-ticket router.

It covers every field type a pipeline may use, so that each face is tried on them:
enum inputs and outputs (one optional), an optional number, a list input, nested
output models (a list of them and an optional one), a dict output, an Enum flag, a
step returning scipy sparse rows, and a score on a 0-100 scale. A package of its own,
so its code fingerprint is this file alone.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from scipy import sparse

from onepipe import Pipeline, Recorder, when


class Channel(StrEnum):
    """Where the ticket came in."""

    email = "email"
    chat = "chat"
    phone = "phone"


class Priority(Enum):
    """How urgent the customer says it is."""

    low = "low"
    normal = "normal"
    high = "high"


class Team(StrEnum):
    """Who handles the ticket."""

    billing = "billing"
    technical = "technical"
    account = "account"
    other = "other"


class Scorer(Enum):
    """How keyword hits become team scores."""

    counts = "counts"
    weighted = "weighted"


Tag = Annotated[str, StringConstraints(max_length=30)]


class Ticket(BaseModel):
    """A customer's support ticket."""

    subject: str = Field(min_length=1, max_length=200, description="The ticket's subject line.")
    body: str = Field("", max_length=2000, description="What the customer wrote.")
    channel: Channel = Field(Channel.email, description="Where the ticket came in.")
    priority: Priority | None = Field(None, description="The priority the customer picked, if any.")
    customer_days: float | None = Field(
        None, ge=0, le=36500, description="How long the customer has been with us, in days."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=5, description="Labels set by the help desk.")


class Match(BaseModel):
    """A routing keyword found in the ticket."""

    keyword: str
    team: Team
    count: int


class Escalation(BaseModel):
    """Why the ticket jumps the queue."""

    level: Priority
    reason: str


class Routing(BaseModel):
    """Where the ticket goes, and how urgently."""

    team: Team = Field(description="The team that handles it.", json_schema_extra={"x-role": "label"})
    confidence: float = Field(
        ge=0,
        le=1,
        description="The team's share of the keyword score.",
        json_schema_extra={"x-role": "confidence"},
    )
    urgency: float = Field(ge=0, le=100, description="Urgency on a 0-100 scale.")
    needs_review: bool = Field(
        description="A person should route it.", json_schema_extra={"x-role": "review"}
    )
    scores: dict[str, float] = Field(description="Each team's score.")
    matches: list[Match] = Field(description="The routing keywords found.")
    escalation: Escalation | None = Field(description="Set when the ticket is escalated.")
    channel: Channel
    tenure: Priority | None = Field(description="Customer tenure as a priority bump, when known.")


class RouterFlags(BaseModel):
    """Variants of the router."""

    model_config = ConfigDict(extra="forbid")

    scorer: Scorer = Field(Scorer.counts, description="How keyword hits become team scores.")
    urgent_words: bool = Field(True, description="Raise the urgency for words like 'down' or 'urgent'.")
    review_below: float = Field(
        0.5, ge=0, le=1, description="Mark for review when the confidence is below this."
    )


WORD = re.compile(r"[a-z]+")
BASE_URGENCY = {Priority.low: 10.0, Priority.normal: 30.0, Priority.high: 60.0}
URGENT = ("down", "urgent", "outage", "asap", "broken")
KEYWORDS = {
    "invoice": Team.billing,
    "refund": Team.billing,
    "charge": Team.billing,
    "error": Team.technical,
    "crash": Team.technical,
    "login": Team.account,
    "password": Team.account,
}


def words(inputs: list[Ticket]) -> list[list[str]]:
    """The lower-case words of the subject, body and tags."""
    return [WORD.findall(" ".join([item.subject, item.body, *item.tags]).lower()) for item in inputs]


def keyword_counts(words: list[list[str]], vocabulary: list[str], recorder: Recorder) -> sparse.csr_matrix:
    """Each ticket's keyword counts: one sparse row per ticket over the vocabulary, as a vectoriser gives."""
    index = {word: column for column, word in enumerate(vocabulary)}
    data: list[float] = []
    columns: list[int] = []
    starts = [0]
    for position, found in enumerate(words):
        counts = Counter(w for w in found if w in index)
        for word in sorted(counts, key=index.__getitem__):
            columns.append(index[word])
            data.append(float(counts[word]))
        starts.append(len(columns))
        recorder.add(position, distinct_keywords=len(counts), counts=dict(sorted(counts.items())))
    return sparse.csr_matrix(
        (np.array(data), np.array(columns, dtype=np.int32), np.array(starts)),
        shape=(len(words), len(vocabulary)),
    )


@when(scorer=Scorer.counts)
def team_scores__counts(
    keyword_counts: list[sparse.csr_matrix], vocabulary: list[str]
) -> list[dict[str, float]]:
    """Each team's score: its keywords' hits."""
    return [_scores(row, vocabulary, lambda count: count) for row in keyword_counts]


@when(scorer=Scorer.weighted)
def team_scores__weighted(
    keyword_counts: list[sparse.csr_matrix], vocabulary: list[str], weights: dict[str, float]
) -> list[dict[str, float]]:
    """Each team's score: its keywords' hits, damped (log) and weighted by the trained weights."""
    return [
        {team: round(score * weights[team], 6) for team, score in _scores(row, vocabulary, np.log1p).items()}
        for row in keyword_counts
    ]


@when(urgent_words=True)
def urgent_hits(words: list[list[str]], recorder: Recorder) -> list[int]:
    """How many urgent words the ticket holds."""
    hits = [sum(w in URGENT for w in found) for found in words]
    for position, found in enumerate(words):
        recorder.add(position, urgent=sorted({w for w in found if w in URGENT}))
    return hits


def routing(
    inputs: list[Ticket],
    keyword_counts: list[sparse.csr_matrix],
    vocabulary: list[str],
    team_scores: list[dict[str, float]],
    urgent_hits: list[int | None],
    flags: RouterFlags,
) -> list[Routing]:
    """The team, the urgency and what was found."""
    routed = []
    for item, row, scores, urgent in zip(inputs, keyword_counts, team_scores, urgent_hits, strict=True):
        total = sum(scores.values())
        team = max(scores, key=lambda name: (scores[name], name)) if total > 0 else Team.other.value
        confidence = round(scores[team] / total, 6) if total > 0 else 0.0
        base = 20.0 if item.priority is None else BASE_URGENCY[item.priority]
        urgency = min(100.0, base + 15.0 * (urgent or 0) + (10.0 if item.channel is Channel.phone else 0.0))
        escalation = (
            Escalation(level=Priority.high, reason=f"urgency {urgency:g} on {item.channel.value}")
            if urgency >= 70
            else None
        )
        routed.append(
            Routing(
                team=Team(team),
                confidence=confidence,
                urgency=urgency,
                needs_review=confidence < flags.review_below,
                scores=scores,
                matches=[
                    Match(keyword=vocabulary[column], team=KEYWORDS[vocabulary[column]], count=int(count))
                    for column, count in zip(row.indices, row.data, strict=True)
                ],
                escalation=escalation,
                channel=item.channel,
                tenure=None if item.customer_days is None else _tenure(item.customer_days),
            )
        )
    return routed


def _scores(row: sparse.csr_matrix, vocabulary: list[str], damp: Any) -> dict[str, float]:
    scores = dict.fromkeys((team.value for team in Team), 0.0)
    for column, count in zip(row.indices, row.data, strict=True):
        scores[KEYWORDS[vocabulary[column]].value] += float(damp(float(count)))
    return scores


def _tenure(days: float) -> Priority:
    return Priority.low if days < 30 else Priority.normal if days < 365 else Priority.high


def build_artifacts(out: Path) -> str:
    """Write the vocabulary and the team weights (fixed here: nothing to learn from)."""
    (out / "router.json").write_text(
        json.dumps(
            {"vocabulary": sorted(KEYWORDS), "weights": {t.value: 1.0 + i / 10 for i, t in enumerate(Team)}}
        )
    )
    return "# Model card: ticket router\n\nKeyword rules; weights fixed."


def load_resources(artifacts: Path) -> dict[str, Any]:
    """Read the vocabulary and the weights."""
    saved = json.loads((artifacts / "router.json").read_text())
    return {"vocabulary": saved["vocabulary"], "weights": saved["weights"]}


pipeline = Pipeline(
    name="ticket-router",
    input_model=Ticket,
    output_model=Routing,
    flags_model=RouterFlags,
    steps=[words, keyword_counts, team_scores__counts, team_scores__weighted, urgent_hits, routing],
    resources=["vocabulary", "weights"],
    load_resources=load_resources,
    build_artifacts=build_artifacts,
    examples={
        "a billing complaint": Ticket(
            subject="Refund for a double charge",
            body="I was charged twice on my last invoice. Please refund one charge asap.",
            channel=Channel.chat,
            priority=Priority.high,
            customer_days=420,
            tags=["billing", "vip"],
        ),
        "an outage": Ticket(
            subject="Login is down", body="Every login attempt gives an error.", channel=Channel.phone
        ),
        "a bare subject": Ticket(subject="Hello"),
    },
)
